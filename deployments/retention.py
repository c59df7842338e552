"""Retention: how long SafeServe keeps what it stores in Redis, enforced from the ReviewQueue's sweep.

- Incident records and audit entries are trimmed by age: a stream entry's id starts with its time in
  milliseconds, so `XTRIM MINID` drops everything older than the cut-off in one command.
- A decided review item expires `reviews_days` after its decision (a TTL set with the decision,
  `ReviewStore`); open items stay until someone decides them. The listing index and the queue stream lose
  their entries for items that are gone.

Serve's log files are not in Redis: they rotate by size (RAY_ROTATION_MAX_BYTES and RAY_ROTATION_BACKUP_COUNT,
scripts/env.sh), and on a cluster the log pipeline's retention must be set to `incidents_days` as well.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from deployments.audit import AUDIT_STREAM, INCIDENT_STREAM
from deployments.config import RetentionConfig
from deployments.review_store import ALL_KEY, ENTRY_KEY, ITEM_KEY, QUEUE

DAY_S = 86_400
_PAGE = 500


def stream_cutoff(now: float, days: float) -> str:
    """The smallest stream id that is still within `days` of `now`."""
    return f"{int((now - days * DAY_S) * 1000)}-0"


async def enforce_retention(redis: aioredis.Redis, config: RetentionConfig, now: float | None = None) -> dict[str, int]:
    """Trim everything past its retention; returns how many entries each kind lost."""
    now = time.time() if now is None else now
    trimmed = {
        "incidents": await redis.xtrim(
            INCIDENT_STREAM, minid=stream_cutoff(now, config.incidents_days), approximate=False
        ),
        "audit": await redis.xtrim(AUDIT_STREAM, minid=stream_cutoff(now, config.audit_days), approximate=False),
        "review_index": await _drop_expired_from_index(redis, now - config.reviews_days * DAY_S),
    }
    # Queue entries older than the cut-off go, but never past the entry of an item still open.
    open_entries = await redis.hvals(ENTRY_KEY)
    cutoff = min([stream_cutoff(now, config.reviews_days), *open_entries], key=_entry_order)
    trimmed["review_queue"] = await redis.xtrim(QUEUE, minid=cutoff, approximate=False)
    return trimmed


async def _drop_expired_from_index(redis: aioredis.Redis, created_before: float) -> int:
    """Index entries of items created before the cut-off whose documents have expired."""
    dropped = 0
    offset = 0
    while ids := await redis.zrangebyscore(ALL_KEY, "-inf", created_before, start=offset, num=_PAGE):
        exists = await redis.mget([ITEM_KEY.format(item_id) for item_id in ids])
        gone = [item_id for item_id, raw in zip(ids, exists, strict=True) if raw is None]
        if gone:
            dropped += await redis.zrem(ALL_KEY, *gone)
        offset += len(ids) - len(gone)
    return dropped


def _entry_order(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)
