"""Reputation against a real redis-server: penalties by severity, strict policy, suspension, admin actions,
recovery with time, and the audit trail of each change."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis.asyncio as aioredis

from deployments.audit import AUDIT_STREAM
from serve_app.config import ReputationConfig
from serve_app.reputation import KEY, ReputationStore

CONFIG = ReputationConfig()  # 100 start, strict below 60, suspended below 30; block -10, x2 weapons, x3 minors;
# review -1 (3 an hour at most) and output_block -3 (9 an hour), never below 60


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


def test_the_gateways_own_uncertain_calls_never_suspend_a_benign_user(redis_server) -> None:
    """The loop a load test once ran: one-token answers went to review (22 of them), the review penalties put the
    user on the strict policy, its thresholds blocked 6 answers, and the user was suspended. Undecided reviews and
    the Moderator's blocks are capped per hour and never take a score below `strict_below`, whatever their number
    and however long it goes on."""
    name = user()

    async def scenario(store: ReputationStore, client):
        views = []
        for _hour in range(6):
            for _ in range(22):
                await store.penalize(name, CONFIG, "review", "harassment", actor="system", reason="load test")
            for _ in range(30):
                await store.penalize(name, CONFIG, "output_block", "harassment", actor="system", reason="load test")
            views.append(await store.view(name, CONFIG))
            # The next hour: the windows end (recovery is left out, so the caps alone are what hold).
            fields = await client.hgetall(KEY.format(name))
            past = str(time.time() - 3601)
            windows = {field: past for field in fields if field.startswith("window:")}
            await client.hset(KEY.format(name), mapping={**windows, "updated_at": str(time.time())})
        return views

    views = run(scenario, redis_server)
    first = views[0]
    cap = CONFIG.penalty_caps["review"] + CONFIG.penalty_caps["output_block"]
    assert first.score == pytest.approx(CONFIG.initial - cap, abs=0.01)  # 22 reviews and 30 blocks took 12 points
    assert all(view.policy != "suspended" for view in views)
    assert min(view.score for view in views) >= CONFIG.strict_below - 0.01


def test_confirmed_violations_still_suspend(redis_server) -> None:
    """What a reviewer confirmed, and the user's own refused requests, are not capped by the floor."""
    name = user()

    async def scenario(store: ReputationStore, _):
        for _ in range(5):
            await store.penalize(name, CONFIG, "review_rejected", "harassment", actor="reviewer", reason="confirmed")
        return await store.view(name, CONFIG)

    view = run(scenario, redis_server)
    assert view.policy == "suspended" and view.score == pytest.approx(25, abs=0.01)


def test_penalty_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        ReputationConfig(penalty_caps={"review": -1})
    with pytest.raises(ValueError):
        ReputationConfig(unconfirmed=frozenset({"typo"}))


def test_the_pipeline_charges_a_moderator_block_as_an_output_block(redis_server) -> None:
    """The model's answer refused is not the user's request refused: it is charged as `output_block`."""
    from types import SimpleNamespace

    from classifiers.taxonomy import Category
    from classifiers.verdict import Action, Verdict
    from serve_app.chat.records import update_reputation

    name = user()

    async def scenario(store: ReputationStore, client):
        gateway = SimpleNamespace(config=SimpleNamespace(reputation=CONFIG), reputation=store)
        ctx = SimpleNamespace(key=SimpleNamespace(role="user", user_id=name), request_id="r-1")
        answer = Verdict(layer="moderator", action=Action.BLOCK, category=Category.HARASSMENT, score=0.95)
        request = Verdict(layer="intent_classifier", action=Action.BLOCK, category=Category.HARASSMENT, score=0.95)
        await update_reputation(gateway, ctx, answer, final=True)
        after_answer = await store.view(name, CONFIG)
        await update_reputation(gateway, ctx, request, final=False)
        after_request = await store.view(name, CONFIG)
        audit = await client.xrevrange(AUDIT_STREAM, count=20)
        return after_answer, after_request, [f["action"] for _, f in audit if f["target"] == f"user:{name}"]

    after_answer, after_request, actions = run(scenario, redis_server)
    assert after_answer.score == pytest.approx(97, abs=0.01)
    assert after_request.score == pytest.approx(87, abs=0.01)
    assert actions == ["reputation.block", "reputation.output_block"]
