"""One way to open Redis, so every deployment gets the same timeouts and the same failure behaviour."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

from deployments.config import RuntimeSettings


def connect(settings: RuntimeSettings) -> aioredis.Redis:
    """A pooled client; connections are opened lazily, so a Redis outage surfaces per call, not here.

    A command that meets a dead connection is retried once on a new one: after Redis restarts, each pooled
    connection would otherwise fail one request. While Redis is down, the retry fails as fast as the first try.
    A command that timed out is not retried: Redis may be running it still, and the rate limiter's and
    reputation's scripts, `HINCRBY` and `XADD` would then count, or record, twice. Its caller's fail mode
    answers instead.
    """
    return aioredis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1, supported_errors=(ConnectionError,)),
    )
