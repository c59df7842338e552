"""GET /healthz (the process answers) and GET /readyz (Redis and every deployment answer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from serve_app.deps import GatewayDep
from serve_app.errors import ServiceUnavailable

router = APIRouter(tags=["health"])
READY_TIMEOUT_S = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(gateway: GatewayDep) -> JSONResponse:
    async def redis_ok() -> bool:
        try:
            return bool(await asyncio.wait_for(gateway.redis.ping(), READY_TIMEOUT_S))
        except (RedisError, TimeoutError, OSError):
            return False

    async def deployment_ok(name: str, handle) -> bool:
        try:
            return bool(await gateway.call(name, handle.ready.remote(), READY_TIMEOUT_S))
        except ServiceUnavailable:
            return False

    names = ["redis", *gateway.handles.all()]
    results = await asyncio.gather(
        redis_ok(), *(deployment_ok(name, handle) for name, handle in gateway.handles.all().items())
    )
    checks = {name: "ok" if ok else "unavailable" for name, ok in zip(names, results, strict=True)}
    ready = all(results)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )
