"""The FastAPI application, built per ingress replica around its Gateway."""

from __future__ import annotations

from fastapi import FastAPI

from serve_app.console.router import router as console_router
from serve_app.errors import install_error_handlers
from serve_app.gateway import Gateway
from serve_app.middleware import ApiKeyPresenceMiddleware, BodyLimitMiddleware, RequestContextMiddleware
from serve_app.routers import (
    admin_incidents,
    admin_keys,
    admin_reviews,
    admin_users,
    chat,
    health,
    litellm_guardrail,
    models,
    moderations,
    reviews,
)

# Every route under these takes an API key (the console signs in with a cookie; health and the docs are open).
KEY_ROUTE_PREFIXES = ("/v1/", "/admin/", "/beta/")


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(
        title="SafeServe",
        summary="A defense-in-depth safety gateway for self-hosted LLMs (OpenAI-compatible).",
        version="0.1.0",
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    # Innermost first: a body too large by its Content-Length (413), then a request without a key (401), are
    # refused before the body is read; a chunked body is cut off at the limit as it is read.
    app.add_middleware(
        ApiKeyPresenceMiddleware, prefixes=KEY_ROUTE_PREFIXES, x_api_key_paths=(litellm_guardrail.GUARDRAIL_PATH,)
    )
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=gateway.settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)  # outermost: it times and logs the 413s too
    routers = (
        chat,
        moderations,
        litellm_guardrail,
        reviews,
        models,
        health,
        admin_keys,
        admin_users,
        admin_reviews,
        admin_incidents,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(console_router)
    return app
