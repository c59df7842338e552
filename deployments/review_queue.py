"""ReviewQueue deployment: owns the Redis-backed review queue for the whole application."""

from __future__ import annotations

from deployments.config import ReviewQueueConfig, RuntimeSettings
from deployments.redis_client import connect
from deployments.review_store import Decision, ReviewItem, ReviewRequest, ReviewStore


class ReviewQueue:
    def __init__(self) -> None:
        self._redis = connect(RuntimeSettings())
        self._store: ReviewStore | None = None

    def reconfigure(self, user_config: dict) -> None:
        config = ReviewQueueConfig.model_validate(user_config)
        self._store = ReviewStore(self._redis, config.sla_seconds, config.excerpt_chars)

    async def enqueue(self, request: ReviewRequest) -> ReviewItem:
        return await self._store.enqueue(request)

    async def get(self, item_id: str) -> ReviewItem:
        return await self._store.get(item_id)

    async def list(self, status: str | None, limit: int) -> list[ReviewItem]:
        return await self._store.list(status, limit)

    async def decide(self, item_id: str, decision: Decision, reviewer: str) -> ReviewItem:
        return await self._store.decide(item_id, decision, reviewer)

    async def audit(self, count: int) -> list[dict[str, str]]:
        return await self._store.audit(count)

    async def ready(self) -> bool:
        return bool(await self._redis.ping())
