"""Plain ASGI middleware (no buffering, so streams stay incremental): per-request bookkeeping (the request id, a
stage timer, the request counter and latency metrics, one JSON log line per request), and the checks that refuse a
request before its body is read (its size, the presence of an API key)."""

from __future__ import annotations

from typing import Any

from ray.serve.context import _get_serve_request_context
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.logs import get_logger
from serve_app.deps import API_KEY_HEADER, GUARDRAIL_KEY_HINT, has_bearer_token
from serve_app.errors import MissingApiKey, error_body, error_response
from serve_app.metrics import REQUESTS, STAGE_LATENCY
from serve_app.timing import StageTimer

logger = get_logger("requests")


def serve_request_id() -> str:
    """Serve's own request id: it honours an incoming `x-request-id`, echoes it in the response and follows
    the request through every deployment handle call (Ray documents it only through this accessor)."""
    return _get_serve_request_context().request_id


def request_log_fields(scope: Scope, state: dict[str, Any], route: str, status: int) -> dict[str, Any]:
    """What the request's log line says: who (key id and user, never the key), what was decided, how long each
    stage took and the tokens spent. No prompt or answer text: that lives, redacted, in the incident records.
    Serve's log formatter adds the request id, deployment and replica (names here avoid its `route`)."""
    timer: StageTimer = state["timer"]
    key = state.get("key")
    return {
        "http_method": scope["method"],
        "http_route": route,
        "http_status": status,
        "decision": state.get("decision", "none"),
        "user_id": key.user_id if key else None,
        "key_id": key.id if key else None,
        "tier": key.tier if key else None,
        "stage_ms": {name: round(ms, 2) for name, ms in timer.stages.items()},
        "total_ms": round(timer.total_ms(), 2),
        "tokens": state.get("tokens"),
    }


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timer = StageTimer()
        state = scope.setdefault("state", {})
        state.update(request_id=serve_request_id(), timer=timer)
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.inc(tags={"route": route, "status": str(status), "decision": state.get("decision", "none")})
            for stage, ms in timer.stages.items():
                STAGE_LATENCY.observe(ms, tags={"stage": stage})
            STAGE_LATENCY.observe(timer.total_ms(), tags={"stage": "total"})
            logger.info("request", extra={"ray_serve_extra_fields": request_log_fields(scope, state, route, status)})


class BodyLimitMiddleware:
    """A body over `max_body_bytes` gets a 413 with an OpenAI-style error before any of it is parsed or its key
    checked: at once by its Content-Length, else (a chunked body) when Starlette's limit stops reading it, whose
    plain-text answer is replaced with the same error."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_body_bytes)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        replaced = False

        async def send_shaped(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                replaced = True
                await self._refuse(scope, receive, send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, send_shaped)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than this gateway accepts ({self.max_body_bytes} bytes)."
        request_id = scope.get("state", {}).get("request_id")
        body = error_body(message, "invalid_request_error", "request_too_large", request_id=request_id)
        await JSONResponse(body, status_code=413)(scope, receive, send)


class ApiKeyPresenceMiddleware:
    """A request to a route under `prefixes` without `Authorization: Bearer <key>` gets the routes' own 401
    (`missing_api_key`) at once: FastAPI reads and parses a body before it runs a route's dependencies, so without
    this an anonymous caller could make the gateway take in and parse up to `max_body_bytes` per request. Whether
    the key is valid is the route's to check (`serve_app.deps.authenticate`). On the `x_api_key_paths` (LiteLLM's
    guardrail route, `serve_app.deps.authenticate_guardrail`) a non-empty `x-api-key` header counts as well."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...], x_api_key_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.prefixes = prefixes
        self.x_api_key_paths = x_api_key_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            headers = Headers(scope=scope)
            takes_x_api_key = scope["path"] in self.x_api_key_paths
            if not has_bearer_token(headers.get("authorization")) and not (
                takes_x_api_key and headers.get(API_KEY_HEADER, "").strip()
            ):
                request_id = scope.get("state", {}).get("request_id")
                error = MissingApiKey(GUARDRAIL_KEY_HINT) if takes_x_api_key else MissingApiKey()
                await error_response(error, request_id)(scope, receive, send)
                return
        await self.app(scope, receive, send)
