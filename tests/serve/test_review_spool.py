"""Durability of the review queue: Redis stopped in the middle of a burst of 100 enqueues, then started again,
leaves exactly 100 items (the ReviewQueue spools what Redis could not take and replays it once)."""

from __future__ import annotations

import asyncio

from ray.serve.handle import DeploymentHandle

from deployments.audit import AUDIT_STREAM
from deployments.review_store import ALL_KEY, QUEUE, ReviewRequest
from harness.processes import RedisServer, wait_until


def test_a_redis_outage_mid_burst_loses_and_duplicates_nothing(base_url: str, redis_server: RedisServer) -> None:
    marker = "spool-burst"

    def request(i: int) -> ReviewRequest:
        return ReviewRequest(
            request_id=f"{marker}-{i}",
            user_id=marker,
            layer="moderator",
            category=None,
            score=0.5,
            request_excerpt=f"{marker} {i}",
        )

    async def burst() -> list[str]:
        handle = DeploymentHandle("ReviewQueue", app_name="safeserve")
        ids = []
        for i in range(100):
            if i == 30:
                redis_server.stop()
            if i == 70:
                redis_server.start()
            ids.append((await handle.enqueue.remote(request(i))).id)
        return ids

    before = redis_server.client().zcard(ALL_KEY)
    try:
        ids = asyncio.run(burst())
    finally:
        if redis_server.process is None:
            redis_server.start()
    assert len(set(ids)) == 100

    def all_there() -> bool:
        return redis_server.client().zcard(ALL_KEY) >= before + 100

    wait_until(all_there, 30, what="the spooled items to be replayed")
    client = redis_server.client()
    stored = client.zrange(ALL_KEY, 0, -1)
    assert sorted(i for i in stored if i in set(ids)) == sorted(ids)
    assert client.zcard(ALL_KEY) == before + 100  # none twice
    # A sorted set cannot hold an id twice; the queue stream and the audit trail can: once each there too.
    queued = [fields["id"] for _, fields in client.xrange(QUEUE) if fields.get("id") in set(ids)]
    assert sorted(queued) == sorted(ids)
    enqueued = [
        fields["target"]
        for _, fields in client.xrange(AUDIT_STREAM)
        if fields.get("action") == "review.enqueued" and fields.get("target") in set(ids)
    ]
    assert sorted(enqueued) == sorted(ids)
