"""The review queue against a real redis-server: claims through the consumer group, claims that time out and
return, decisions, idempotent enqueue, the audit trail of every step, and the outage spool."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from deployments.review_report import score_band, threshold_report
from deployments.review_spool import Replay, ReviewSpool
from deployments.review_store import (
    Decision,
    ReviewClaimedByOther,
    ReviewItem,
    ReviewRequest,
    ReviewStore,
)


def request(text: str = "a request") -> ReviewRequest:
    return ReviewRequest(
        request_id="req", user_id="u1", layer="moderator", category="violence", score=0.6, request_excerpt=text
    )


def run(scenario, redis_server, claim_timeout_s: float = 0.5):
    async def main():
        # Database 3 of the session's redis-server: the deployed app's ReviewQueue (database 0) sweeps its
        # own queue in the background and must not release this test's claims.
        client = aioredis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3", decode_responses=True)
        await client.delete("safeserve:review:queue")  # a queue of this test's own (the group is re-made)
        try:
            return await scenario(
                ReviewStore(client, sla_seconds=60, excerpt_chars=100, claim_timeout_s=claim_timeout_s)
            )
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_claim_that_times_out_returns_to_the_queue_and_is_then_decided(redis_server) -> None:
    async def scenario(store: ReviewStore):
        item = store.new_item(request())
        await store.put(item)
        first = await store.claim("rita")
        nothing_else = await store.claim("ralph")  # the only item is rita's while her claim lives
        await asyncio.sleep(0.6)
        released = await store.expire_claims()
        returned = await store.get(item.id)
        second = await store.claim("ralph")
        decided = await store.decide(item.id, Decision(decision="approve", note="fine"), "ralph")
        trail = await store.audit(20, target=item.id)
        return item, first, nothing_else, released, returned, second, decided, trail

    item, first, nothing_else, released, returned, second, decided, trail = run(scenario, redis_server)
    assert first.id == item.id and first.status == "claimed" and first.claimed_by == "rita"
    assert nothing_else is None
    assert released == [item.id] and returned.status == "pending" and returned.claimed_by is None
    assert second.id == item.id and second.claimed_by == "ralph"
    assert decided.status == "approved" and decided.decisions[0].reviewer == "ralph"
    steps = [(entry["action"], entry["actor"]) for entry in reversed(trail)]
    assert steps == [
        ("review.enqueued", "system"),
        ("review.claimed", "rita"),
        ("review.claim_expired", "system"),
        ("review.claimed", "ralph"),
        ("review.approve", "ralph"),
    ]
    approve = trail[0]
    assert approve["reason"] == "fine"
    assert json.loads(approve["before"])["status"] == "claimed" and json.loads(approve["after"])["status"] == "approved"


def test_timed_out_claims_behind_many_fresh_ones_are_still_taken_over(redis_server) -> None:
    """XAUTOCLAIM scans ten pending entries per call: the claims a reviewer has just taken over at the head of
    the pending list must not hide the timed-out ones behind them."""

    async def scenario(store: ReviewStore):
        items = [store.new_item(request(f"item {i}")) for i in range(13)]
        for item in items:
            await store.put(item)
        for reviewer in ["olga"] * 12 + ["rita"]:
            await store.claim(reviewer)
        await asyncio.sleep(0.6)  # every claim has timed out
        return items, [await store.claim("lead") for _ in range(14)]

    items, taken = run(scenario, redis_server)
    assert [item.id for item in taken[:13]] == [item.id for item in items]
    assert all(item.claimed_by == "lead" for item in taken[:13]) and taken[13] is None


def test_a_live_claim_keeps_other_reviewers_from_deciding(redis_server) -> None:
    async def scenario(store: ReviewStore):
        item = store.new_item(request())
        await store.put(item)
        await store.claim("rita")
        with pytest.raises(ReviewClaimedByOther):
            await store.decide(item.id, Decision(decision="reject"), "ralph")
        return await store.decide(item.id, Decision(decision="reject"), "rita")

    assert run(scenario, redis_server, claim_timeout_s=60).status == "rejected"


def test_enqueue_is_idempotent_by_item_id(redis_server) -> None:
    async def scenario(store: ReviewStore):
        item = store.new_item(request())
        return await store.put(item), await store.put(item), await store.audit(50, target=item.id)

    first, again, trail = run(scenario, redis_server)
    assert (first, again) == (True, False)
    assert [entry["action"] for entry in trail] == ["review.enqueued"]


def test_escalated_items_go_back_to_the_queue(redis_server) -> None:
    async def scenario(store: ReviewStore):
        item = store.new_item(request())
        await store.put(item)
        await store.claim("rita")
        escalated = await store.decide(item.id, Decision(decision="escalate", note="legal"), "rita")
        again = await store.claim("lead")
        return item, escalated, again

    item, escalated, again = run(scenario, redis_server, claim_timeout_s=60)
    assert escalated.status == "escalated"
    assert again is not None and again.id == item.id and again.claimed_by == "lead"


def test_the_spool_hands_over_each_item_once_and_keeps_what_failed(tmp_path) -> None:
    spool = ReviewSpool(tmp_path / "spool" / "reviews.jsonl")
    # Only new_item is used here, which never touches Redis (a client connects on first use).
    store = ReviewStore(aioredis.from_url("redis://127.0.0.1:1/0"), sla_seconds=60, excerpt_chars=100)
    items = [store.new_item(request(f"item {i}")) for i in range(5)]
    received: list[ReviewItem] = []

    async def flaky_put(item: ReviewItem) -> bool:
        if len(received) == 3 and not flaky_put.failed:
            flaky_put.failed = True
            raise ConnectionError("Redis went away again")
        received.append(item)
        return True

    flaky_put.failed = False

    async def scenario():
        for item in items:
            await spool.append(item)
        with pytest.raises(ConnectionError):
            await spool.replay(flaky_put)
        left = spool.pending()
        done = await spool.replay(flaky_put)
        return left, done

    left, done = asyncio.run(scenario())
    assert left == 2 and done == Replay(replayed=2, quarantined=0)
    assert [item.id for item in received] == [item.id for item in items]
    assert not spool.path.exists() and spool.pending() == 0
    assert time.time() - received[0].created_at < 60


def test_a_replay_loses_no_line_another_replica_appends_meanwhile(tmp_path) -> None:
    """Two replicas' spools on one file: while one replays (its `put` waiting on Redis), the other appends.
    The append waits for the replay to finish, so the replay's rewrite of the file cannot drop it."""
    path = tmp_path / "reviews.jsonl"
    replaying, appending = ReviewSpool(path), ReviewSpool(path)
    store = ReviewStore(aioredis.from_url("redis://127.0.0.1:1/0"), sla_seconds=60, excerpt_chars=100)
    spooled = [store.new_item(request(f"spooled {i}")) for i in range(3)]
    meanwhile = [store.new_item(request(f"meanwhile {i}")) for i in range(3)]
    received: list[ReviewItem] = []
    in_put = asyncio.Event()

    async def slow_put(item: ReviewItem) -> bool:
        in_put.set()
        await asyncio.sleep(0.05)  # a round trip to Redis, during which the other replica appends
        received.append(item)
        return True

    async def scenario():
        for item in spooled:
            await replaying.append(item)
        replay = asyncio.create_task(replaying.replay(slow_put))
        await in_put.wait()
        for item in meanwhile:
            await asyncio.wait_for(appending.append(item), timeout=5)
        first = await replay
        second = await replaying.replay(slow_put)
        return first, second

    first, second = asyncio.run(scenario())
    assert (first.replayed, second.replayed) == (3, 3)
    assert [item.id for item in received] == [item.id for item in spooled + meanwhile]
    assert not path.exists()


def test_the_threshold_report_counts_decisions_by_layer_category_and_score_band(redis_server) -> None:
    def flagged(layer: str, category: str | None, score: float) -> ReviewRequest:
        return ReviewRequest(
            request_id="req", user_id="u1", layer=layer, category=category, score=score, request_excerpt="x"
        )

    async def scenario(store: ReviewStore):
        since = time.time()
        plan = [
            (flagged("input_patterns", "privacy", 0.55), ["approve"]),
            (flagged("input_patterns", "privacy", 0.58), ["reject"]),
            (flagged("moderator", "violence", 0.62), ["escalate", "approve"]),
            (flagged("moderator", "violence", 1.0), []),  # still open: nothing to count
        ]
        for review, decisions in plan:
            item = store.new_item(review)
            await store.put(item)
            for decision in decisions:
                await store.decide(item.id, Decision(decision=decision), "rita")
        return threshold_report(await store.queued_since(since), since)

    report = run(scenario, redis_server, claim_timeout_s=60)
    assert report.decisions == 4
    privacy = report.by_category["privacy"]
    assert (privacy.approve, privacy.reject, privacy.escalate, privacy.total) == (1, 1, 0, 2)
    assert privacy.approve_rate == 0.5 and privacy.reject_rate == 0.5
    moderator = report.by_layer["moderator"]
    assert (moderator.approve, moderator.escalate, moderator.total) == (1, 1, 2)
    assert report.by_score_band["0.5-0.6"].total == 2 and report.by_score_band["0.6-0.7"].escalate_rate == 0.5
    assert "1.0-1.1" not in report.by_score_band and score_band(1.0) == "0.9-1.0"
    assert report.model_dump()["by_layer"]["input_patterns"]["reject_rate"] == 0.5  # rates reach the JSON


def item_at(i: int) -> ReviewItem:
    now = time.time()
    return ReviewItem(
        id=f"item-{i}",
        request_id=f"request-{i}",
        user_id="spool-user",
        layer="moderator",
        category=None,
        score=0.5,
        request_excerpt=f"excerpt {i}",
        created_at=now,
        sla_deadline=now + 3600,
    )


def test_a_torn_line_is_quarantined_and_the_items_after_it_are_replayed(tmp_path) -> None:
    spool = ReviewSpool(tmp_path / "reviews.jsonl")
    torn = item_at(1).model_dump_json()[:40]
    older = '{"id": "old-1", "format": 1}'

    async def fill_and_replay() -> tuple[Replay, list[str]]:
        await spool.append(item_at(0))
        with spool.path.open("a", encoding="utf-8") as raw:
            raw.write(torn + "\n" + older + "\n")
        await spool.append(item_at(2))
        received: list[str] = []

        async def put(it: ReviewItem) -> bool:
            received.append(it.id)
            return True

        return await spool.replay(put), received

    replay, received = asyncio.run(fill_and_replay())
    assert received == ["item-0", "item-2"]
    assert replay == Replay(replayed=2, quarantined=2)
    assert spool.quarantine_path.read_text(encoding="utf-8").splitlines() == [torn, older]
    assert not spool.path.exists() and spool.pending() == 0
