"""Per-request bookkeeping as plain ASGI middleware (no buffering, so streams stay incremental):
a request id that is echoed in `x-request-id`, a stage timer, and the request counter and latency metrics."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.metrics import REQUESTS, STAGE_LATENCY
from serve_app.timing import StageTimer

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.match(candidate) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or f"req_{uuid.uuid4().hex}"
        timer = StageTimer()
        state = scope.setdefault("state", {})
        state.update(request_id=request_id, timer=timer)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            REQUESTS.inc(tags={"route": path, "status": str(status), "decision": state.get("decision", "none")})
            for stage, ms in timer.stages.items():
                STAGE_LATENCY.observe(ms, tags={"stage": stage})
            STAGE_LATENCY.observe(timer.total_ms(), tags={"stage": "total"})
