"""The human review queue in Redis: a stream with a consumer group, item documents, and the audit trail.

Layout:
- `safeserve:review:item:<id>`: one JSON document per item (what was flagged, its status, its decisions);
- `safeserve:review:queue`: a stream of item ids, read by the consumer group `reviewers`. A reviewer claims
  an item by reading it into the group (XREADGROUP); a claim not decided within `claim_timeout_s` is released
  (`expire_claims`: the item shows as pending again and the audit trail says so) and the next claim takes it
  over (XAUTOCLAIM). A decision acknowledges the entry (XACK);
- `safeserve:review:open` / `safeserve:review:all`: items by creation time, for listing and queue depth;
- the audit stream (`deployments/audit.py`): every enqueue, claim, release and decision, with before and after.

Enqueueing is idempotent by item id (one script: SET NX, then XADD), so a replay after an outage can never
queue an item twice. State changes of an item run in WATCH/MULTI transactions, so two reviewers deciding one
item at once cannot both win.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import ResponseError, WatchError

from deployments.audit import AUDIT_STREAM, audit_fields

ITEM_KEY = "safeserve:review:item:{}"
QUEUE = "safeserve:review:queue"
GROUP = "reviewers"
ENTRY_KEY = "safeserve:review:entry"  # hash: item id -> its stream entry id
OPEN_KEY = "safeserve:review:open"
ALL_KEY = "safeserve:review:all"
MGET_PAGE = 500  # items read per MGET

Status = Literal["pending", "claimed", "escalated", "approved", "rejected"]
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "claimed", "escalated"})
_OUTCOME: dict[str, Status] = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}

# KEYS: item, queue, entry map, open index, all index, audit. ARGV: id, item JSON, created (s), audit fields
# (as alternating name/value pairs from ARGV[4] on). Returns 1 when queued, 0 when the id was queued before.
_ENQUEUE = """
if not redis.call('SET', KEYS[1], ARGV[2], 'NX') then return 0 end
local entry = redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], entry)
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[6], '*', unpack(fields))
return 1
"""


class ReviewRequest(BaseModel):
    """What a safety layer hands to review (already redacted and cut to excerpts by the caller)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    user_id: str
    key_id: str | None = None
    layer: str
    category: str | None
    score: float
    scores: dict[str, float] = Field(default_factory=dict)
    request_excerpt: str
    output_excerpt: str | None = None
    spans: list[tuple[int, int]] = Field(default_factory=list, description="Flagged spans of output_excerpt.")
    mode: Literal["async", "hold"] = "async"
    penalized: bool = Field(False, description="The pipeline lowered the user's reputation for this review verdict.")
    held_output: str | None = Field(
        None, description="hold mode: the withheld answer, whole (reviewers see what approval releases)."
    )


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
    claimed_by: str | None = None
    claim_expires_at: float | None = None
    decisions: list[DecisionRecord] = Field(default_factory=list)


class ReviewNotFound(LookupError):
    pass


class ReviewAlreadyDecided(RuntimeError):
    pass


class ReviewClaimedByOther(RuntimeError):
    pass


class ReviewStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        sla_seconds: int,
        excerpt_chars: int,
        claim_timeout_s: float = 900,
        decided_ttl_s: float | None = None,
    ) -> None:
        self.redis = redis
        self.sla_seconds = sla_seconds
        self.excerpt_chars = excerpt_chars
        self.claim_timeout_s = claim_timeout_s
        self.decided_ttl_s = decided_ttl_s  # retention of a decided item (deployments/retention.py)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._group_ready = False

    def new_item(self, request: ReviewRequest) -> ReviewItem:
        now = time.time()
        return ReviewItem(
            **request.model_dump(exclude={"request_excerpt", "output_excerpt"}),
            request_excerpt=request.request_excerpt[: self.excerpt_chars],
            output_excerpt=None if request.output_excerpt is None else request.output_excerpt[: self.excerpt_chars],
            id=f"rev_{uuid.uuid4().hex[:20]}",
            created_at=now,
            sla_deadline=now + self.sla_seconds,
        )

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(QUEUE, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, item: ReviewItem, actor: str = "system") -> bool:
        """Queue a made item; False when an item with its id is queued already (a replay)."""
        await self._ensure_group()
        fields = audit_fields(actor, "review.enqueued", item.id, after={"status": item.status, "mode": item.mode})
        flat = [value for pair in fields.items() for value in pair]
        keys = [ITEM_KEY.format(item.id), QUEUE, ENTRY_KEY, OPEN_KEY, ALL_KEY, AUDIT_STREAM]
        return bool(await self._enqueue(keys=keys, args=[item.id, item.model_dump_json(), item.created_at, *flat]))

    async def get(self, item_id: str) -> ReviewItem:
        raw = await self.redis.get(ITEM_KEY.format(item_id))
        if raw is None:
            raise ReviewNotFound(item_id)
        return ReviewItem.model_validate_json(raw)

    async def list(self, status: str | None = "pending", limit: int = 50) -> list[ReviewItem]:
        """Oldest first, so the item closest to its SLA deadline is on top."""
        index = OPEN_KEY if status in OPEN_STATUSES or status == "open" else ALL_KEY
        items: list[ReviewItem] = []
        offset, page = 0, max(limit, 50)
        while len(items) < limit:
            ids = await self.redis.zrange(index, offset, offset + page - 1)
            if not ids:
                break
            offset += page
            items.extend([item async for item in self._items(ids) if status in (None, "open") or item.status == status])
        return items[:limit]

    async def queued_since(self, since: float) -> list[ReviewItem]:
        """Every item (open or decided) queued at `since` or later, oldest first."""
        return [item async for item in self._items(await self.redis.zrangebyscore(ALL_KEY, since, "+inf"))]

    async def _items(self, ids: list[str]) -> AsyncIterator[ReviewItem]:
        """The items with these ids that still exist, in order, read a page of MGET at a time."""
        for start in range(0, len(ids), MGET_PAGE):
            raws = await self.redis.mget([ITEM_KEY.format(i) for i in ids[start : start + MGET_PAGE]])
            for raw in raws:
                if raw is not None:
                    yield ReviewItem.model_validate_json(raw)

    async def _update(
        self, item_id: str, change: Callable[[ReviewItem], ReviewItem], actor: str, action: str, reason: str = ""
    ) -> tuple[ReviewItem, ReviewItem]:
        """Apply `change` to the item in a WATCH/MULTI transaction, with its audit entry; (before, after)."""
        key = ITEM_KEY.format(item_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise ReviewNotFound(item_id)
                    before = ReviewItem.model_validate_json(raw)
                    after = change(before)
                    pipe.multi()
                    pipe.set(key, after.model_dump_json())
                    if after.status not in OPEN_STATUSES:
                        pipe.zrem(OPEN_KEY, item_id)
                        if self.decided_ttl_s is not None:
                            pipe.expire(key, int(self.decided_ttl_s))
                    pipe.xadd(AUDIT_STREAM, audit_fields(actor, action, item_id, _state(before), _state(after), reason))
                    await pipe.execute()
                    return before, after
                except WatchError:
                    continue

    async def claim(self, reviewer: str) -> ReviewItem | None:
        """The next item for `reviewer`: first one whose claim timed out (taken over), else the oldest new one."""
        await self._ensure_group()
        while True:
            entries = await self._next_entry(reviewer)
            if not entries:
                return None
            entry_id, fields = entries[0]
            try:
                item = await self.get(fields["id"])
            except ReviewNotFound:
                await self.redis.xack(QUEUE, GROUP, entry_id)
                continue
            if item.status not in OPEN_STATUSES:
                await self.redis.xack(QUEUE, GROUP, entry_id)  # decided through the API without a claim
                continue
            claim = {
                "status": "claimed",
                "claimed_by": reviewer,
                "claim_expires_at": time.time() + self.claim_timeout_s,
            }
            _, after = await self._update(
                item.id, lambda before, c=claim: before.model_copy(update=c), reviewer, "review.claimed"
            )
            return after

    async def _next_entry(self, reviewer: str) -> list:
        """The oldest entry whose claim timed out, taken over; else the oldest never read. XAUTOCLAIM looks at
        no more than ten pending entries per call, so its cursor is followed through the whole pending list:
        claims taken a moment ago at its head must not hide a timed-out one behind them."""
        timeout_ms = int(self.claim_timeout_s * 1000)
        start = "0-0"
        while True:
            start, entries, _ = await self.redis.xautoclaim(QUEUE, GROUP, reviewer, timeout_ms, start, count=1)
            if entries:
                return entries
            if start == "0-0":
                break
        read = await self.redis.xreadgroup(GROUP, reviewer, {QUEUE: ">"}, count=1)
        return read[0][1] if read else []

    async def expire_claims(self) -> list[str]:
        """Release the claims whose time is up: the items show as pending again (and are audited as released);
        the next `claim` takes their stream entries over. Returns the released ids."""
        released = []
        for item in await self.list("claimed", limit=500):
            if item.claim_expires_at is not None and item.claim_expires_at <= time.time():
                before, after = await self._update(
                    item.id, partial(_release, expires=item.claim_expires_at), "system", "review.claim_expired"
                )
                if after.status == "pending" and before.status == "claimed":
                    released.append(item.id)
        return released

    async def decide(self, item_id: str, decision: Decision, reviewer: str) -> ReviewItem:
        record = DecisionRecord(**decision.model_dump(), reviewer=reviewer, decided_at=time.time())

        def decided(before: ReviewItem) -> ReviewItem:
            if before.status not in OPEN_STATUSES:
                raise ReviewAlreadyDecided(f"review {item_id} is already {before.status}")
            claim_live = before.claim_expires_at is not None and before.claim_expires_at > time.time()
            if before.status == "claimed" and before.claimed_by != reviewer and claim_live:
                raise ReviewClaimedByOther(f"review {item_id} is claimed by another reviewer")
            return before.model_copy(
                update={
                    "status": _OUTCOME[decision.decision],
                    "decisions": [*before.decisions, record],
                    "claimed_by": None,
                    "claim_expires_at": None,
                }
            )

        _, after = await self._update(item_id, decided, reviewer, f"review.{decision.decision}", decision.note)
        entry = await self.redis.hget(ENTRY_KEY, item_id)
        if entry:
            await self.redis.xack(QUEUE, GROUP, entry)
            if after.status == "escalated":  # back in the queue, for someone more senior
                new_entry = await self.redis.xadd(QUEUE, {"id": item_id})
                await self.redis.hset(ENTRY_KEY, item_id, new_entry)
            else:
                await self.redis.hdel(ENTRY_KEY, item_id)
        return after

    async def erase_user(self, user_id: str) -> int:
        """Delete every review item of a user (open or decided) with its queue and index entries; the audit
        entries about them stay (they hold states, not content). Returns how many items went."""
        erased = 0
        async for item in self._items(await self.redis.zrange(ALL_KEY, 0, -1)):
            if item.user_id != user_id:
                continue
            entry = await self.redis.hget(ENTRY_KEY, item.id)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(ITEM_KEY.format(item.id))
                pipe.zrem(OPEN_KEY, item.id)
                pipe.zrem(ALL_KEY, item.id)
                pipe.hdel(ENTRY_KEY, item.id)
                if entry:
                    pipe.xack(QUEUE, GROUP, entry)
                    pipe.xdel(QUEUE, entry)
                await pipe.execute()
            erased += 1
        return erased

    async def audit(self, count: int = 100, target: str | None = None) -> list[dict[str, str]]:
        """Newest first; `target` keeps only the entries about one item or user."""
        entries = await self.redis.xrevrange(AUDIT_STREAM, count=count if target is None else max(count, 1000))
        rows = [{"id": entry_id, **fields} for entry_id, fields in entries]
        return rows if target is None else [row for row in rows if row.get("target") == target][:count]

    async def stats(self) -> dict[str, float]:
        """What a lead watches: queue depth, oldest pending age, decisions in the last hour, open SLA misses."""
        now = time.time()
        depth = await self.redis.zcard(OPEN_KEY)
        oldest = await self.redis.zrange(OPEN_KEY, 0, 0, withscores=True)
        open_items = await self.list("open", limit=1000)
        hour_ago = f"{int((now - 3600) * 1000)}-0"
        recent = await self.redis.xrange(AUDIT_STREAM, min=hour_ago, count=10_000)
        decided = sum(1 for _, fields in recent if fields.get("action") in ("review.approve", "review.reject"))
        return {
            "queue_depth": depth,
            "oldest_pending_age_s": round(now - oldest[0][1], 1) if oldest else 0.0,
            "decisions_last_hour": decided,
            "sla_misses_open": sum(1 for item in open_items if item.sla_deadline < now),
        }


def _release(item: ReviewItem, expires: float) -> ReviewItem:
    """An expired claim back to pending, unless the item was decided or claimed again meanwhile."""
    if item.status != "claimed" or item.claim_expires_at != expires:
        return item
    return item.model_copy(update={"status": "pending", "claimed_by": None, "claim_expires_at": None})


def _state(item: ReviewItem) -> dict:
    return {"status": item.status, "claimed_by": item.claimed_by}
