"""The safety calls of a chat request: the input screen (deny patterns, then the IntentClassifier), the
Moderator's verdicts on answers, tool calls and `/v1/moderations` texts, and the capability gate on the tool
calls a model makes. Each asks the first stage in this process before it pays for a hop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

from classifiers.screening import screen_patterns
from classifiers.verdict import Action, Verdict, apply_redactions, strongest
from deployments.generation import ToolCall
from deployments.moderator import observe as observe_assessments
from deployments.scores import observe_scores
from serve_app.access import Access
from serve_app.capabilities import check_tools
from serve_app.chat.records import MODERATOR_LAYER, record_decision
from serve_app.chat.translate import request_text
from serve_app.deps import RequestContext
from serve_app.errors import PolicyViolation
from serve_app.gateway import Gateway
from serve_app.metrics import FIRST_STAGE

CAPABILITY_LAYER = "capability_gate"


async def screen_input(gateway: Gateway, ctx: RequestContext, access: Access, turn_views: list[list[str]]) -> Verdict:
    """Deny patterns in process over every view of every turn and over the joined conversation, then the
    IntentClassifier on the same; raises PolicyViolation on a block."""
    joined = request_text(turn_views)
    with ctx.timer.stage("patterns"):
        verdict = screen_patterns(turn_views, gateway.input_patterns)
    if verdict.action is not Action.BLOCK:
        with ctx.timer.stage("classify"):
            model_verdict = await classify(gateway, turn_views, access.strict)
        verdict = strongest([verdict, model_verdict], layer="input")
    await record_decision(gateway, ctx, access, verdict, joined)
    if verdict.action is Action.BLOCK:
        raise PolicyViolation(
            f"This request was blocked by SafeServe's {verdict.layer} layer (category: {verdict.category}).",
            layer=verdict.layer,
            category=verdict.category,
        )
    return verdict


async def classify(gateway: Gateway, turn_views: list[list[str]], strict: bool) -> Verdict:
    """The intent verdict: from the first stage in this process when its n-gram member is sure of every text,
    else from the IntentClassifier (serve_app/first_stage.py)."""
    gateway.first_stage.ensure_refreshing()
    stage = gateway.first_stage.intent
    if stage is not None and (verdict := stage.classify(turn_views, strict)) is not None:
        FIRST_STAGE.inc(tags={"layer": "intent_classifier", "outcome": "decided"})
        observe_scores("intent", [verdict])
        return verdict
    FIRST_STAGE.inc(tags={"layer": "intent_classifier", "outcome": "hop"})
    return await gateway.safety_call(
        "intent_classifier",
        gateway.handles.intent.classify.remote(turn_views, strict),
        gateway.config.timeouts.classify_s,
    )


async def moderate(gateway: Gateway, ctx: RequestContext, access: Access, text: str, question: str = "") -> Verdict:
    """The Moderator's verdict on `text`; `question` (what the text answers) lets it judge the answer in context."""
    with ctx.timer.stage("moderate"):
        return await moderator_verdict(gateway, access, text, question)


async def moderator_verdict(gateway: Gateway, access: Access, text: str, question: str) -> Verdict:
    """The Moderator's verdict on one text: from its first stage in this process when no dear member would read
    the text, else from the Moderator, failing as the policy says; callers time it."""
    if (decided := first_stage_verdicts(gateway, [text], [question], access.strict)) is not None:
        return decided[0]
    return await gateway.safety_call(
        "moderator",
        gateway.handles.moderator.moderate.remote(text, question, access.strict),
        gateway.config.timeouts.moderate_s,
    )


def first_stage_verdicts(
    gateway: Gateway, texts: list[str], questions: list[str], strict: bool
) -> list[Verdict] | None:
    """The verdicts of the Moderator's first stage in this process (serve_app/first_stage.py), or None when a
    text needs the Moderator itself."""
    gateway.first_stage.ensure_refreshing()
    stage = gateway.first_stage.moderator
    assessments = stage.assess(texts, questions, [strict] * len(texts)) if stage is not None else None
    FIRST_STAGE.inc(tags={"layer": MODERATOR_LAYER, "outcome": "hop" if assessments is None else "decided"})
    return None if assessments is None else observe_assessments(assessments)


async def moderate_answer(
    gateway: Gateway, ctx: RequestContext, access: Access, text: str, calls: Sequence[ToolCall], question: str
) -> tuple[Verdict, list[ToolCall]]:
    """The verdict on an answer and the tool calls it makes, and the calls as they may be delivered.

    Each call's arguments are moderated as a text of their own, after the question, beside the answer: the client
    runs the call, so its arguments reach the world as surely as the answer reaches the user, and they can carry
    what the answer must not (a secret or someone's address to send, instructions to write to a file). The
    strongest verdict decides, then the capability gate; the answer's redactions stay on the verdict, and each
    call's are applied to its arguments."""
    if not calls:
        return gate_tool_calls(access, calls, await moderate(gateway, ctx, access, text, question)), []
    checked = [text, *(call.arguments for call in calls)]
    with ctx.timer.stage("moderate"):
        answer, *per_call = await asyncio.gather(*(moderator_verdict(gateway, access, t, question) for t in checked))
    checked_calls = [redact_tool_call(call, verdict) for call, verdict in zip(calls, per_call, strict=True)]
    verdict = strongest([answer, *(verdict for _call, verdict in checked_calls)], layer=answer.layer)
    if verdict.action is not Action.BLOCK:
        verdict = replace(verdict, redactions=answer.redactions)
    return gate_tool_calls(access, calls, verdict), [call for call, _verdict in checked_calls]


def redact_tool_call(call: ToolCall, verdict: Verdict) -> tuple[ToolCall, Verdict]:
    """The call with its arguments' redactions applied, and its verdict with reasons that name the call. Arguments
    that were JSON and no longer parse once redacted block the answer: the client could not run the call."""
    verdict = replace(verdict, reasons=tuple(f"tool_call:{call.name}:{reason}" for reason in verdict.reasons))
    if verdict.action is Action.BLOCK or not verdict.redactions:
        return call, replace(verdict, redactions=())
    arguments = apply_redactions(call.arguments, verdict.redactions)
    if is_json(call.arguments) and not is_json(arguments):
        return call, Verdict(
            layer=verdict.layer,
            action=Action.BLOCK,
            score=1.0,
            reasons=(f"tool_call:{call.name}:redaction_broke_arguments",),
        )
    return replace(call, arguments=arguments), replace(verdict, redactions=())


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def moderate_many(gateway: Gateway, ctx: RequestContext, access: Access, texts: list[str]) -> list[Verdict]:
    """The Moderator's verdicts on texts that answer nothing (a `/v1/moderations` array), in one call."""
    with ctx.timer.stage("moderate"):
        if (decided := first_stage_verdicts(gateway, texts, [""] * len(texts), access.strict)) is not None:
            return decided
        return await gateway.safety_call(
            "moderator",
            gateway.handles.moderator.moderate_many.remote(texts, access.strict),
            gateway.config.timeouts.moderate_s,
            verdicts=len(texts),
        )


def gate_tool_calls(access: Access, calls: Sequence[ToolCall], verdict: Verdict) -> Verdict:
    """Tool calls the model emitted pass the same gate as the tools a request offers: a call to a tool the
    tier does not allow blocks the answer (it never reaches the client). Otherwise the Moderator's `verdict`
    stands whole, its redactions included."""
    check = check_tools(access.tier, [call.name for call in calls])
    if not check.forbidden or verdict.action is Action.BLOCK:
        return verdict
    return Verdict(
        layer=CAPABILITY_LAYER,
        action=Action.BLOCK,
        score=1.0,
        reasons=tuple(f"tool_call_not_allowed:{name}" for name in check.forbidden),
    )
