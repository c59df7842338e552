"""One way to open Redis, so every deployment gets the same timeouts and the same failure behaviour."""

from __future__ import annotations

import redis.asyncio as aioredis

from deployments.config import RuntimeSettings


def connect(settings: RuntimeSettings) -> aioredis.Redis:
    """A pooled client; connections are opened lazily, so a Redis outage surfaces per call, not here."""
    return aioredis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
