"""ReviewQueue deployment: owns the Redis-backed review queue for the whole application.

Besides answering calls it runs one background sweep per replica (every `sweep_interval_s`): claims whose time
is up go back to the queue, items spooled during a Redis outage are replayed, the retention policy is applied
(hourly by default, `deployments/retention.py`), and the queue and `redis_up` gauges are set.
"""

from __future__ import annotations

import asyncio
import time

from ray.serve import metrics
from redis.exceptions import RedisError

from classifiers.paths import home_dir
from deployments.config import ReviewQueueConfig, RuntimeSettings
from deployments.live_config import keeps_running_policy
from deployments.logs import get_logger
from deployments.redis_client import connect
from deployments.retention import DAY_S, enforce_retention
from deployments.review_report import ThresholdReport, threshold_report
from deployments.review_spool import ReviewSpool
from deployments.review_store import Decision, ReviewItem, ReviewRequest, ReviewStore

logger = get_logger("review_queue")
QUEUE_DEPTH = metrics.Gauge("safeserve_review_queue_depth", description="Open review items (pending, claimed).")
OLDEST_PENDING = metrics.Gauge(
    "safeserve_review_oldest_pending_age_seconds", description="Age of the oldest open review item."
)
SLA_MISSES_OPEN = metrics.Gauge("safeserve_review_sla_misses_open", description="Open items past their SLA deadline.")
SLA_MISSES = metrics.Counter("safeserve_review_sla_misses_total", description="Items decided after their SLA deadline.")
DECISIONS = metrics.Counter(
    "safeserve_review_decisions_total", description="Review decisions by outcome.", tag_keys=("decision",)
)
TIME_TO_DECISION = metrics.Histogram(
    "safeserve_review_time_to_decision_seconds",
    description="From queued to decided.",
    boundaries=[60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400],
)
REDIS_UP = metrics.Gauge(
    "safeserve_redis_up", description="1 if the last review sweep (every sweep_interval_s) reached Redis, else 0."
)
RETENTION_TRIMMED = metrics.Counter(
    "safeserve_retention_trimmed_total",
    description="Records removed by the retention policy, by kind (incidents, audit, review_index, review_queue).",
    tag_keys=("kind",),
)
SPOOL = metrics.Counter(
    "safeserve_review_spool_total",
    description="Items written to the local spool while Redis was unreachable, replayed, and spooled lines that "
    "were not items, quarantined.",
    tag_keys=("event",),
)


class ReviewQueue:
    def __init__(self) -> None:
        self._redis = connect(RuntimeSettings())
        self._store: ReviewStore | None = None
        self._spool: ReviewSpool | None = None
        self._sweeper: asyncio.Task | None = None
        self._retention_due = 0.0  # monotonic time of the next retention pass
        self.config: ReviewQueueConfig | None = None

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        config = ReviewQueueConfig.model_validate(user_config)
        spool = ReviewSpool(home_dir() / config.spool_path)
        self._store = ReviewStore(
            self._redis,
            config.sla_seconds,
            config.excerpt_chars,
            config.claim_timeout_s,
            decided_ttl_s=config.retention.reviews_days * DAY_S,
        )
        self._spool = spool
        self.config = config

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_s)
            try:
                await self.sweep()
                REDIS_UP.set(1)
            except RedisError as exc:
                REDIS_UP.set(0)
                logger.warning("review sweep: Redis unavailable (%s)", exc.__class__.__name__)
            except Exception:
                logger.exception("review sweep failed")

    async def sweep(self) -> dict[str, int]:
        """Release expired claims, replay the spool, apply retention when due, refresh the gauges."""
        replay = await self._spool.replay(self._store.put)
        replayed = replay.replayed
        if replayed:
            SPOOL.inc(replayed, tags={"event": "replayed"})
            logger.info("replayed %d spooled review items", replayed)
        if replay.quarantined:
            SPOOL.inc(replay.quarantined, tags={"event": "quarantined"})
            logger.error(
                "%d spooled lines were not review items; moved to %s", replay.quarantined, self._spool.quarantine_path
            )
        released = await self._store.expire_claims()
        if time.monotonic() >= self._retention_due:
            trimmed = await enforce_retention(self._redis, self.config.retention)
            self._retention_due = time.monotonic() + self.config.retention.enforce_every_s
            for kind, count in trimmed.items():
                if count:  # Ray's counters take only positive increments
                    RETENTION_TRIMMED.inc(count, tags={"kind": kind})
            if any(trimmed.values()):
                logger.info("retention: removed %s", trimmed)
        stats = await self._store.stats()
        QUEUE_DEPTH.set(stats["queue_depth"])
        OLDEST_PENDING.set(stats["oldest_pending_age_s"])
        SLA_MISSES_OPEN.set(stats["sla_misses_open"])
        return {"replayed": replayed, "released": len(released)}

    async def enqueue(self, request: ReviewRequest) -> ReviewItem:
        """Queue an item; while Redis is unreachable it goes to the local spool (replayed when Redis returns),
        so an accepted item is never lost."""
        self._ensure_sweeper()
        item = self._store.new_item(request)
        try:
            await self._store.put(item)
        except RedisError as exc:
            await self._spool.append(item)
            SPOOL.inc(tags={"event": "spooled"})
            logger.warning("Redis unavailable (%s): review item %s spooled", exc.__class__.__name__, item.id)
        return item

    async def get(self, item_id: str) -> ReviewItem:
        self._ensure_sweeper()
        return await self._store.get(item_id)

    async def list(self, status: str | None, limit: int) -> list[ReviewItem]:
        self._ensure_sweeper()
        return await self._store.list(status, limit)

    async def claim(self, reviewer: str) -> ReviewItem | None:
        self._ensure_sweeper()
        return await self._store.claim(reviewer)

    async def decide(self, item_id: str, decision: Decision, reviewer: str) -> ReviewItem:
        self._ensure_sweeper()
        item = await self._store.decide(item_id, decision, reviewer)
        DECISIONS.inc(tags={"decision": decision.decision})
        if item.status in ("approved", "rejected"):
            TIME_TO_DECISION.observe(time.time() - item.created_at)
            if time.time() > item.sla_deadline:
                SLA_MISSES.inc()
        return item

    async def audit(self, count: int, target: str | None = None) -> list[dict[str, str]]:
        return await self._store.audit(count, target)

    async def stats(self) -> dict[str, float]:
        return {**await self._store.stats(), "spooled": self._spool.pending()}

    async def report(self, days: float) -> ThresholdReport:
        """How reviewers decided the items queued in the last `days`, by layer, category and score band."""
        since = time.time() - days * DAY_S
        return threshold_report(await self._store.queued_since(since), since)

    async def erase_user(self, user_id: str) -> int:
        """Every review item of the user, gone (the erasure request of `DELETE /admin/users/{id}/data`)."""
        return await self._store.erase_user(user_id)

    async def check_health(self) -> None:
        """Serve's periodic health check; it also starts the sweep on a replica no request has reached yet."""
        self._ensure_sweeper()

    async def ready(self) -> bool:
        self._ensure_sweeper()
        return bool(await self._redis.ping())
