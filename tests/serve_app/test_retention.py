"""Retention and erasure against a real redis-server: streams trimmed by age, decided review items that expire,
open items that stay, and a user's data erased store by store."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis

from deployments.audit import AUDIT_STREAM, INCIDENT_STREAM
from deployments.config import RetentionConfig
from deployments.retention import DAY_S, enforce_retention
from deployments.review_store import ALL_KEY, ITEM_KEY, QUEUE, Decision, ReviewRequest, ReviewStore
from serve_app.auth import KeyStore
from serve_app.config import Limits, ReputationConfig
from serve_app.incidents import IncidentRecorder
from serve_app.limits import RateLimiter
from serve_app.reputation import ReputationStore

CONFIG = RetentionConfig(incidents_days=30, reviews_days=90, audit_days=365)


def run(scenario, redis_server):
    async def main():
        # Database 4: apart from the deployed app (database 0) and the review store tests (3).
        client = aioredis.from_url(redis_server.url.rsplit("/", 1)[0] + "/4", decode_responses=True)
        await client.flushdb()
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def stream_id(days_ago: float, sequence: int = 0) -> str:
    return f"{int((time.time() - days_ago * DAY_S) * 1000)}-{sequence}"


def review(user_id: str) -> ReviewRequest:
    return ReviewRequest(
        request_id=f"req-{user_id}", user_id=user_id, layer="moderator", category="hate", score=0.6, request_excerpt="x"
    )


def test_streams_are_trimmed_by_age(redis_server) -> None:
    async def scenario(client):
        for days_ago in (400, 100, 31, 29, 1):
            await client.xadd(INCIDENT_STREAM, {"record": "{}"}, id=stream_id(days_ago))
            await client.xadd(AUDIT_STREAM, {"action": "x"}, id=stream_id(days_ago))
        trimmed = await enforce_retention(client, CONFIG)
        return trimmed, await client.xlen(INCIDENT_STREAM), await client.xlen(AUDIT_STREAM)

    trimmed, incidents, audit = run(scenario, redis_server)
    assert (incidents, audit) == (2, 4)  # 30 days of incidents, 365 of audit
    assert trimmed["incidents"] == 3 and trimmed["audit"] == 1


def test_decided_items_expire_after_the_retention_and_open_ones_stay(redis_server) -> None:
    async def scenario(client):
        store = ReviewStore(client, sla_seconds=60, excerpt_chars=100, decided_ttl_s=CONFIG.reviews_days * DAY_S)
        decided, still_open = store.new_item(review("a")), store.new_item(review("b"))
        for item in (decided, still_open):
            await store.put(item)
        await store.decide(decided.id, Decision(decision="approve"), "rita")
        ttls = await client.ttl(ITEM_KEY.format(decided.id)), await client.ttl(ITEM_KEY.format(still_open.id))
        # Once the decided item's document has expired, retention drops what still points at it.
        await client.delete(ITEM_KEY.format(decided.id))
        await client.zadd(ALL_KEY, {decided.id: time.time() - 91 * DAY_S})
        trimmed = await enforce_retention(client, CONFIG)
        listed = [item.id for item in await store.list(None, 10)]
        return ttls, trimmed, listed, await store.claim("rita")

    (decided_ttl, open_ttl), trimmed, listed, claimed = run(scenario, redis_server)
    assert 89 * DAY_S < decided_ttl <= 90 * DAY_S
    assert open_ttl == -1  # no expiry while undecided
    assert trimmed["review_index"] == 1 and len(listed) == 1
    assert claimed is not None and claimed.user_id == "b"  # the open item's queue entry survived the trim


def test_erasure_removes_a_users_data_and_nothing_of_others(redis_server) -> None:
    async def scenario(client):
        keys = KeyStore(client, b"secret")
        limiter = RateLimiter(client)
        reputation = ReputationStore(client)
        incidents = IncidentRecorder(client)
        store = ReviewStore(client, sla_seconds=60, excerpt_chars=100)
        config = ReputationConfig()
        mine, theirs = await keys.create("erin", "free", "user"), await keys.create("olaf", "free", "user")
        for created in (mine, theirs):
            await limiter.admit(created.id, Limits(requests_per_minute=5, tokens_per_day=1000), 10)
        await keys.revoke(mine.id)
        for user in ("erin", "olaf"):
            await reputation.penalize(user, config, "block", "hate", actor="system", reason="test")
            await client.xadd(INCIDENT_STREAM, {"record": json.dumps({"user_id": user, "excerpt": "x"})})
            await store.put(store.new_item(review(user)))

        erased = (
            await keys.erase_user("erin"),
            await limiter.erase(mine.id),
            await reputation.erase("erin"),
            await incidents.erase_user("erin"),
            await store.erase_user("erin"),
        )
        remaining_incidents = [json.loads(f["record"])["user_id"] for _, f in await client.xrange(INCIDENT_STREAM)]
        remaining_reviews = [item.user_id for item in await store.list(None, 10)]
        leftovers = [name async for name in client.scan_iter(match=f"*{mine.id}*")]
        return (
            erased,
            await keys.lookup(theirs.key),
            remaining_incidents,
            remaining_reviews,
            leftovers,
            await client.exists("safeserve:reputation:erin"),
            await client.xlen(QUEUE),
            await client.xlen(AUDIT_STREAM),
        )

    erased, other_key, incidents, reviews, leftovers, reputation_left, queue_len, audit_len = run(
        scenario, redis_server
    )
    key_ids, counters, had_reputation, incident_count, review_count = erased
    assert len(key_ids) == 1 and counters >= 2 and had_reputation and incident_count == 1 and review_count == 1
    assert other_key is not None and other_key.user_id == "olaf"
    assert incidents == ["olaf"] and reviews == ["olaf"]
    assert leftovers == [] and reputation_left == 0
    assert queue_len == 1  # olaf's entry only
    assert audit_len > 0  # the audit trail is kept
