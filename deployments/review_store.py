"""Review items in Redis: the queue of outputs and requests that a human must look at.

Layout: one JSON document per item (`safeserve:review:item:<id>`), a sorted set of open items by age
(`safeserve:review:open`) and one of all items (`safeserve:review:all`); every decision is also appended
to the audit stream (`safeserve:audit`). A decision is applied in a WATCH/MULTI transaction, so two
reviewers deciding the same item at once cannot both win.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import WatchError

ITEM_KEY = "safeserve:review:item:{}"
OPEN_KEY = "safeserve:review:open"
ALL_KEY = "safeserve:review:all"
AUDIT_STREAM = "safeserve:audit"

Status = Literal["pending", "escalated", "approved", "rejected"]
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "escalated"})
_OUTCOME: dict[str, Status] = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}


class ReviewRequest(BaseModel):
    """What a safety layer hands to review (already redacted and cut to excerpts by the caller)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    user_id: str
    layer: str
    category: str | None
    score: float
    scores: dict[str, float] = Field(default_factory=dict)
    request_excerpt: str
    output_excerpt: str | None = None


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "escalate"]
    note: str = Field("", max_length=2000)


class DecisionRecord(Decision):
    reviewer: str
    decided_at: float


class ReviewItem(ReviewRequest):
    id: str
    status: Status = "pending"
    created_at: float
    sla_deadline: float
    decisions: list[DecisionRecord] = Field(default_factory=list)


class ReviewNotFound(LookupError):
    pass


class ReviewAlreadyDecided(RuntimeError):
    pass


class ReviewStore:
    def __init__(self, redis: aioredis.Redis, sla_seconds: int, excerpt_chars: int) -> None:
        self.redis = redis
        self.sla_seconds = sla_seconds
        self.excerpt_chars = excerpt_chars

    async def enqueue(self, request: ReviewRequest) -> ReviewItem:
        now = time.time()
        item = ReviewItem(
            **request.model_dump(exclude={"request_excerpt", "output_excerpt"}),
            request_excerpt=request.request_excerpt[: self.excerpt_chars],
            output_excerpt=None if request.output_excerpt is None else request.output_excerpt[: self.excerpt_chars],
            id=f"rev_{uuid.uuid4().hex[:20]}",
            created_at=now,
            sla_deadline=now + self.sla_seconds,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(ITEM_KEY.format(item.id), item.model_dump_json())
            pipe.zadd(OPEN_KEY, {item.id: now})
            pipe.zadd(ALL_KEY, {item.id: now})
            await pipe.execute()
        return item

    async def get(self, item_id: str) -> ReviewItem:
        raw = await self.redis.get(ITEM_KEY.format(item_id))
        if raw is None:
            raise ReviewNotFound(item_id)
        return ReviewItem.model_validate_json(raw)

    async def list(self, status: str | None = "pending", limit: int = 50) -> list[ReviewItem]:
        """Oldest first, so the item closest to its SLA deadline is on top."""
        index = OPEN_KEY if status in OPEN_STATUSES else ALL_KEY
        items: list[ReviewItem] = []
        offset, page = 0, max(limit, 50)
        while len(items) < limit:
            ids = await self.redis.zrange(index, offset, offset + page - 1)
            if not ids:
                break
            offset += page
            raws = await self.redis.mget([ITEM_KEY.format(i) for i in ids])
            found = (ReviewItem.model_validate_json(raw) for raw in raws if raw is not None)
            items.extend(item for item in found if status is None or item.status == status)
        return items[:limit]

    async def decide(self, item_id: str, decision: Decision, reviewer: str) -> ReviewItem:
        key = ITEM_KEY.format(item_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise ReviewNotFound(item_id)
                    before = ReviewItem.model_validate_json(raw)
                    if before.status not in OPEN_STATUSES:
                        raise ReviewAlreadyDecided(f"review {item_id} is already {before.status}")
                    record = DecisionRecord(**decision.model_dump(), reviewer=reviewer, decided_at=time.time())
                    after = before.model_copy(
                        update={"status": _OUTCOME[decision.decision], "decisions": [*before.decisions, record]}
                    )
                    pipe.multi()
                    pipe.set(key, after.model_dump_json())
                    if after.status not in OPEN_STATUSES:
                        pipe.zrem(OPEN_KEY, item_id)
                    pipe.xadd(
                        AUDIT_STREAM,
                        {
                            "actor": reviewer,
                            "action": f"review.{decision.decision}",
                            "target": item_id,
                            "before": json.dumps({"status": before.status}),
                            "after": json.dumps({"status": after.status, "note": decision.note}),
                            "ts": str(record.decided_at),
                        },
                    )
                    await pipe.execute()
                    return after
                except WatchError:
                    continue

    async def audit(self, count: int = 100) -> list[dict[str, str]]:
        """Newest first."""
        entries = await self.redis.xrevrange(AUDIT_STREAM, count=count)
        return [{"id": entry_id, **fields} for entry_id, fields in entries]
