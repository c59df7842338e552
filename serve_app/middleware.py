"""Per-request bookkeeping as plain ASGI middleware (no buffering, so streams stay incremental):
the request id, a stage timer, and the request counter and latency metrics."""

from __future__ import annotations

from ray.serve.context import _get_serve_request_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.metrics import REQUESTS, STAGE_LATENCY
from serve_app.timing import StageTimer


def serve_request_id() -> str:
    """Serve's own request id: it honours an incoming `x-request-id`, echoes it in the response and follows
    the request through every deployment handle call (Ray documents it only through this accessor)."""
    return _get_serve_request_context().request_id


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
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.inc(tags={"route": path, "status": str(status), "decision": state.get("decision", "none")})
            for stage, ms in timer.stages.items():
                STAGE_LATENCY.observe(ms, tags={"stage": stage})
            STAGE_LATENCY.observe(timer.total_ms(), tags={"stage": "total"})
