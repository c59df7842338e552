"""The decision records of a chat request: its final decision, the incident record, the user's reputation, review
items (held answers included), and the guard that lets a record be written whole when the client leaves."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import RedisError

from classifiers.redaction import redact
from classifiers.verdict import Action, Verdict, apply_redactions
from deployments.logs import get_logger
from deployments.review_store import ReviewRequest
from serve_app.access import Access
from serve_app.deps import RequestContext
from serve_app.errors import ServiceUnavailable
from serve_app.gateway import Gateway
from serve_app.incidents import incident_record
from serve_app.metrics import DECISIONS, INFRA_ERRORS, REPUTATION_CHANGES

T = TypeVar("T")
MODERATOR_LAYER = "moderator"  # classifiers.moderation.LAYER, the layer of every verdict on an answer
logger = get_logger("chat")
# The request's final decision is the strongest one any stage made: an input sent to review stays `review`
# when its answer is allowed, so the requests metric counts what the request went through.
DECISION_RANK = {"allow": 0, "redacted": 1, "review": 2, "held": 3, "block": 4, "content_filter": 4}


def decide(ctx: RequestContext, decision: str) -> None:
    """Record `decision` as the request's final one unless an earlier stage made a stronger one."""
    current = getattr(ctx.state, "decision", None)
    if current is None or DECISION_RANK[decision] >= DECISION_RANK[current]:
        ctx.state.decision = decision


async def update_reputation(gateway: Gateway, ctx: RequestContext, verdict: Verdict, final: bool) -> None:
    """Blocked and reviewed attempts lower the user's score; a clean answered request raises it a little.
    Best effort: the decision is already made, so a Redis fault here is counted and logged, not raised."""
    if ctx.key.role == "admin":
        return
    config = gateway.config.reputation
    try:
        if verdict.action is Action.ALLOW:
            if final:
                await gateway.reputation.reward_clean(ctx.key.user_id, config)
            return
        if verdict.action is Action.REVIEW:
            event = "review"
        else:  # the model's answer refused is not the user's request refused
            event = "output_block" if verdict.layer == MODERATOR_LAYER else "block"
        reason = f"{verdict.layer} {verdict.action} {verdict.category} (request {ctx.request_id})"
        standing = await gateway.reputation.penalize(
            ctx.key.user_id, config, event, str(verdict.category), actor="system", reason=reason
        )
        REPUTATION_CHANGES.inc(tags={"event": event})
        if standing.newly_suspended:
            REPUTATION_CHANGES.inc(tags={"event": "suspended"})
            logger.warning("user suspended by reputation after %s", reason)
    except RedisError as exc:
        INFRA_ERRORS.inc(tags={"component": "redis", "outcome": "reputation_not_updated"})
        logger.error("reputation update failed: %s", exc.__class__.__name__)


async def record_decision(
    gateway: Gateway,
    ctx: RequestContext,
    access: Access,
    verdict: Verdict,
    request_text: str,
    output: str | None = None,
) -> None:
    """Write the decision record: allow decisions to the log only; others (and redacted answers, whose
    `reasons` say `redacted:<kind>`) also to the incident stream, with review-band items in an `async`
    category queued for a human (a `hold` category's item is queued by the caller, with the withheld answer).
    The user's reputation follows the decision; the tier's `review_sample_rate` sends a share of allowed
    answers to review as well."""
    redacted = verdict.action is Action.ALLOW and bool(verdict.redactions)
    if output is not None and verdict.action is Action.BLOCK:
        decide(ctx, "content_filter")
    else:
        decide(ctx, "redacted" if redacted else str(verdict.action))
    record = incident_record(
        verdict,
        request_id=ctx.request_id,
        user_id=ctx.key.user_id,
        key_id=ctx.key.id,
        route=ctx.route,
        text=output if output is not None else request_text,
        config=gateway.config.incidents,
    )
    await update_reputation(gateway, ctx, verdict, final=output is not None)
    if verdict.action is Action.ALLOW and not redacted:
        gateway.incidents.log(record)
        if output is not None and random.random() < access.tier.review_sample_rate:
            await enqueue_review(gateway, ctx, verdict, request_text, output, layer="sample")
        return
    category = verdict.redactions[0].category if redacted else verdict.category
    action = "redact" if redacted else verdict.action
    DECISIONS.inc(tags={"layer": verdict.layer, "category": str(category), "action": action})
    await gateway.incidents.record(record, gateway.config.incidents)
    if verdict.action is Action.REVIEW and not withholds_answer(gateway, verdict):
        await enqueue_review(gateway, ctx, verdict, request_text, output)


def withholds_answer(gateway: Gateway, verdict: Verdict | None) -> bool:
    """Whether this verdict withholds the answer until a reviewer approves it (`hold` mode of its category)."""
    return (
        verdict is not None
        and verdict.action is Action.REVIEW
        and gateway.config.review_mode(verdict.category) == "hold"
    )


def _review_request(
    ctx: RequestContext, verdict: Verdict, request_text: str, output: str | None, layer: str | None = None
) -> ReviewRequest:
    return ReviewRequest(
        request_id=ctx.request_id,
        user_id=ctx.key.user_id,
        key_id=ctx.key.id,
        layer=layer or verdict.layer,
        category=verdict.category,
        score=verdict.score,
        scores={str(c): round(s, 4) for c, s in verdict.scores.items()},
        request_excerpt=redact(request_text),
        output_excerpt=None if output is None else redact(output),
        penalized=verdict.action is Action.REVIEW and ctx.key.role != "admin",  # as `update_reputation` does
    )


async def enqueue_review(
    gateway: Gateway,
    ctx: RequestContext,
    verdict: Verdict,
    request_text: str,
    output: str | None,
    layer: str | None = None,
) -> None:
    item = _review_request(ctx, verdict, request_text, output, layer)
    try:
        await gateway.call(
            "review_queue", gateway.handles.reviews.enqueue.remote(item), gateway.config.timeouts.review_s
        )
    except ServiceUnavailable:
        # The answer is still delivered (async review); the incident record above keeps the evidence.
        INFRA_ERRORS.inc(tags={"component": "review_queue", "outcome": "review_not_queued"})


async def hold_for_review(
    gateway: Gateway, ctx: RequestContext, verdict: Verdict, request_text: str, answer: str
) -> str:
    """Queue the withheld answer for review and return the item id. Fails closed: if the queue cannot take it,
    the caller gets a 503 and the answer is not delivered."""
    request = _review_request(ctx, verdict, request_text, answer).model_copy(
        update={"mode": "hold", "held_output": answer}
    )
    item = await gateway.call(
        "review_queue", gateway.handles.reviews.enqueue.remote(request), gateway.config.timeouts.review_s
    )
    return item.id


async def withhold_stream(
    gateway: Gateway, ctx: RequestContext, access: Access, verdict: Verdict, request_text: str, answer: str
) -> str:
    """Record a streamed answer's hold decision and queue the whole answer (redactions applied) for review;
    returns the review id. Fails closed like `hold_for_review`."""
    await record_decision(gateway, ctx, access, verdict, request_text, output=answer)
    review_id = await hold_for_review(gateway, ctx, verdict, request_text, apply_redactions(answer, verdict.redactions))
    decide(ctx, "held")
    return review_id


async def record_unfinished_stream(
    gateway: Gateway, ctx: RequestContext, access: Access, verdict: Verdict, request_text: str, output: str
) -> None:
    """Record the strongest verdict of a stream that ended before its answer was judged whole (the client left,
    or a fault ended it): incident, reputation and review item as for a whole answer. A `hold` category's item
    is queued as an async one: the client that would fetch the released answer is gone."""
    await record_decision(gateway, ctx, access, verdict, request_text, output=output)
    if withholds_answer(gateway, verdict):
        await enqueue_review(gateway, ctx, verdict, request_text, output)


_RUNNING: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones


def run_to_end(work: Awaitable[T]) -> Awaitable[T]:
    """`work` in a task of its own that runs to its end even if its caller is cancelled (a stream whose client
    disconnects is cancelled where it awaits): a decision is recorded whole, never half."""
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return asyncio.shield(task)


def held_message(review_id: str) -> str:
    return (
        f"This answer is held for human review (review id {review_id}). "
        f"Once it is approved, GET /v1/reviews/{review_id} with the same API key returns it."
    )
