"""Reputation against a real redis-server: penalties by severity, strict policy, suspension, admin actions,
recovery with time, and the audit trail of each change."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import redis.asyncio as aioredis

from deployments.audit import AUDIT_STREAM
from serve_app.config import ReputationConfig
from serve_app.reputation import KEY, ReputationStore

CONFIG = ReputationConfig()  # 100 start, strict below 60, suspended below 30; block -10, x2 weapons, x3 minors


def run(scenario, redis_server):
    async def main():
        client = aioredis.from_url(redis_server.url, decode_responses=True)
        try:
            return await scenario(ReputationStore(client), client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_blocks_lead_to_the_strict_policy_then_a_suspension_that_an_admin_lifts(redis_server) -> None:
    name = user()

    async def scenario(store: ReputationStore, client):
        seen = []
        for _ in range(5):  # 5 x 10: 50, strict
            await store.penalize(name, CONFIG, "block", "violence", actor="system", reason="test")
        seen.append(await store.view(name, CONFIG))
        suspending = await store.penalize(name, CONFIG, "block", "sexual_minors", actor="system", reason="test")
        seen.append(await store.view(name, CONFIG))
        await store.lift(name, CONFIG, actor="root", reason="appeal upheld")
        seen.append(await store.view(name, CONFIG))
        await store.reset(name, CONFIG, actor="root", reason="clean slate")
        seen.append(await store.view(name, CONFIG))
        audit = await client.xrevrange(AUDIT_STREAM, count=50)
        return seen, suspending, [fields for _, fields in audit if fields["target"] == f"user:{name}"]

    (strict, suspended, lifted, reset), suspending, audit = run(scenario, redis_server)
    assert strict.policy == "strict" and round(strict.score) == 50
    assert suspending.newly_suspended and suspended.policy == "suspended" and round(suspended.score) == 20
    assert suspended.suspended_until > time.time() + 59 * 60
    assert lifted.policy == "strict" and lifted.suspended_until is None and lifted.score >= CONFIG.suspend_below
    assert reset.policy == "standard" and reset.score == CONFIG.initial
    actions = [entry["action"] for entry in reversed(audit)]
    assert actions == ["reputation.block"] * 6 + ["user.lift", "user.reset"]
    lift = next(entry for entry in audit if entry["action"] == "user.lift")
    assert lift["actor"] == "root" and lift["reason"] == "appeal upheld"
    assert json.loads(lift["before"])["suspended_until"] > 0 and json.loads(lift["after"])["suspended_until"] == 0


def test_penalties_scale_with_the_category(redis_server) -> None:
    name = user()

    async def scenario(store: ReputationStore, _):
        await store.penalize(name, CONFIG, "block", "sexual_minors", actor="system", reason="test")
        return await store.view(name, CONFIG)

    assert round(run(scenario, redis_server).score) == 70  # 10 x 3


def test_time_and_clean_traffic_restore_the_score(redis_server) -> None:
    name = user()

    async def scenario(store: ReputationStore, client):
        await store.penalize(name, CONFIG, "review", None, actor="system", reason="test")  # 98
        # Pretend the penalty was written an hour ago: 2 points per hour come back.
        await client.hset(KEY.format(name), "updated_at", str(time.time() - 3600))
        recovered = await store.view(name, CONFIG)
        await store.penalize(name, CONFIG, "block", None, actor="system", reason="test")  # 90
        for _ in range(5):  # 5 clean requests x 0.2
            await store.reward_clean(name, CONFIG)
        rewarded = await store.view(name, CONFIG)
        await store.penalize(name, CONFIG, "block", None, actor="system", reason="again")
        audit = await client.xrevrange(AUDIT_STREAM, count=20)
        last = next(fields for _, fields in audit if fields["target"] == f"user:{name}")
        return recovered, rewarded, last

    recovered, rewarded, last = run(scenario, redis_server)
    assert abs(recovered.score - 100) < 0.01
    assert 91.0 <= rewarded.score < 91.1
    # The recovery is folded into the next change, whose audit entry shows it in "before".
    assert last["reason"] == "again"
    assert 91.0 <= json.loads(last["before"])["score"] < 91.1 and 81.0 <= json.loads(last["after"])["score"] < 81.1


def test_an_admin_suspension_holds_until_it_ends(redis_server) -> None:
    name = user()

    async def scenario(store: ReputationStore, _):
        await store.suspend(name, CONFIG, minutes=5, actor="root", reason="abuse report")
        return await store.view(name, CONFIG)

    view = run(scenario, redis_server)
    assert view.policy == "suspended" and view.score == CONFIG.initial
    assert time.time() + 4 * 60 < view.suspended_until <= time.time() + 5 * 60
