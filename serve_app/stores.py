"""The ingress's Redis-backed stores, all on one client: API keys, incidents, rate limits and reputation."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from deployments.redis_client import connect
from serve_app.auth import KeyStore
from serve_app.config import Settings
from serve_app.incidents import IncidentRecorder
from serve_app.limits import RateLimiter
from serve_app.reputation import ReputationStore


@dataclass(frozen=True)
class Stores:
    redis: aioredis.Redis
    keys: KeyStore
    incidents: IncidentRecorder
    limiter: RateLimiter
    reputation: ReputationStore

    @classmethod
    def on(cls, client: aioredis.Redis, hash_secret: bytes) -> Stores:
        """Every store on `client`; API keys are stored under the keyed hash of `hash_secret`."""
        return cls(
            redis=client,
            keys=KeyStore(client, hash_secret),
            incidents=IncidentRecorder(client),
            limiter=RateLimiter(client),
            reputation=ReputationStore(client),
        )

    @classmethod
    def connect(cls, settings: Settings) -> Stores:
        return cls.on(connect(settings), settings.hash_secret())
