"""Request and response models of the HTTP API (OpenAI-compatible where OpenAI defines one)."""
