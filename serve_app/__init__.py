"""SafeServe's HTTP surface: the FastAPI ingress, schemas, auth, the app builder and the CLI."""
