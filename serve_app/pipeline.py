"""The safety path of a chat request: screen the input, generate, moderate the output, report.

Cheap checks (normalisation, deny patterns) run here in the ingress process; only the model-holding layers
cost a hop. Every non-allow decision is recorded as an incident, and review-band items go to the queue.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from redis.exceptions import RedisError

from classifiers.normalize import views
from classifiers.redaction import redact
from classifiers.screening import screen_patterns
from classifiers.verdict import Action, Verdict, apply_redactions, strongest
from deployments.generation import Completion, Message, SamplingParams, StreamEnd, ToolCall
from deployments.logs import get_logger
from deployments.moderator import observe as observe_assessments
from deployments.review_store import ReviewRequest
from deployments.scores import observe_scores
from serve_app.access import Access, settle
from serve_app.capabilities import check_tools
from serve_app.deps import RequestContext
from serve_app.errors import PolicyViolation, SafeServeError, ServiceUnavailable, error_body
from serve_app.gateway import Gateway
from serve_app.incidents import incident_record
from serve_app.metrics import (
    DECISIONS,
    FIRST_STAGE,
    INFRA_ERRORS,
    REPUTATION_CHANGES,
    TIME_TO_FIRST_TOKEN,
    TOKENS,
)
from serve_app.schemas.chat import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    NamedToolChoice,
    ToolCallDelta,
    ToolCallOut,
    Usage,
)
from serve_app.streaming import StreamWindow

T = TypeVar("T")
MODERATOR_LAYER = "moderator"  # classifiers.moderation.LAYER, the layer of every verdict on an answer
logger = get_logger("pipeline")
CAPABILITY_LAYER = "capability_gate"
# The request's final decision is the strongest one any stage made: an input sent to review stays `review`
# when its answer is allowed, so the requests metric counts what the request went through.
# A temperature this small samples as greedy decoding does; below about 1e-37 the logits divided by it overflow
# float32 and the model run fails ("probability tensor contains inf"), which a caller must not be able to cause.
GREEDY_BELOW_TEMPERATURE = 1e-3
DECISION_RANK = {"allow": 0, "redacted": 1, "review": 2, "held": 3, "block": 4, "content_filter": 4}


def decide(ctx: RequestContext, decision: str) -> None:
    """Record `decision` as the request's final one unless an earlier stage made a stronger one."""
    current = getattr(ctx.state, "decision", None)
    if current is None or DECISION_RANK[decision] >= DECISION_RANK[current]:
        ctx.state.decision = decision


def untrusted_views(request: ChatCompletionRequest) -> list[list[str]]:
    """Everything the caller wrote or relayed (tool results and tool definitions included), prior assistant turns
    excepted: per turn, its views, the normalised text first and then the de-obfuscated variants that every check
    also sees. The tool definitions count as one more turn."""
    texts = [m.text for m in request.messages if m.role != "assistant"]
    if request.tools:
        texts.append(request.tools_text)
    return [views(text) for text in texts]


def request_text(turn_views: list[list[str]]) -> str:
    """The normalised turns joined: the text incident excerpts and review items are cut from."""
    return "\n".join(turn[0] for turn in turn_views)


def model_messages(request: ChatCompletionRequest) -> list[Message]:
    """The conversation as the Generator takes it: role and text, and the links between tool calls and their
    results that a model with tool use needs."""
    messages = []
    for m in request.messages:
        message: Message = {"role": m.role, "content": m.text}
        if m.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in m.tool_calls]
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        messages.append(message)
    return messages


def sampling_params(gateway: Gateway, ctx: RequestContext, request: ChatCompletionRequest) -> SamplingParams:
    tier = gateway.config.tiers.get(ctx.key.tier)
    ceiling = tier.max_tokens if tier else min(t.max_tokens for t in gateway.config.tiers.values())
    wanted = request.requested_tokens() or gateway.config.default_max_tokens
    return SamplingParams(
        max_tokens=min(wanted, ceiling),
        temperature=request.temperature if request.temperature >= GREEDY_BELOW_TEMPERATURE else 0.0,
        top_p=request.top_p,
        seed=request.seed,
        stop=request.stop_sequences(),
        tier=ctx.key.tier,
        tools=tuple(tool.model_dump(exclude_none=True) for tool in request.tools or ()),
        tool_choice=(
            request.tool_choice.model_dump(exclude_none=True)
            if isinstance(request.tool_choice, NamedToolChoice)
            else request.tool_choice
        ),
    )


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


async def report(
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
    if verdict.action is Action.REVIEW and not holds(gateway, verdict):
        await enqueue_review(gateway, ctx, verdict, request_text, output)


def holds(gateway: Gateway, verdict: Verdict | None) -> bool:
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
    await report(gateway, ctx, access, verdict, request_text, output=answer)
    review_id = await hold_for_review(gateway, ctx, verdict, request_text, apply_redactions(answer, verdict.redactions))
    decide(ctx, "held")
    return review_id


async def report_unfinished(
    gateway: Gateway, ctx: RequestContext, access: Access, verdict: Verdict, request_text: str, output: str
) -> None:
    """Record the strongest verdict of a stream that ended before its answer was judged whole (the client left,
    or a fault ended it): incident, reputation and review item as for a whole answer. A `hold` category's item
    is queued as an async one: the client that would fetch the released answer is gone."""
    await report(gateway, ctx, access, verdict, request_text, output=output)
    if holds(gateway, verdict):
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
    await report(gateway, ctx, access, verdict, joined)
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


def tokens_spent(gateway: Gateway, access: Access, completion: Completion) -> tuple[int, int]:
    """Prompt and completion tokens as the model server reported them; where it sent no `usage` (zeros for a
    non-empty answer), as the ingress counts them: the prompt as admitted, the answer and its tool calls."""
    prompt = completion.prompt_tokens or access.prompt_tokens
    answer = completion.completion_tokens
    if not answer and (completion.text or completion.tool_calls):
        answer = output_tokens(gateway, completion.text, completion.tool_calls)
    return prompt, answer


def output_tokens(gateway: Gateway, text: str, calls: Sequence[ToolCall]) -> int:
    """What an answer spent: its text and the arguments of the tool calls it made."""
    return gateway.tokens.length(text) + sum(gateway.tokens.length(call.arguments) for call in calls)


def count_tokens(ctx: RequestContext, prompt: int, completion: int) -> None:
    """Tokens spent on this request: to the metrics and to its request log line."""
    for kind, count in (("prompt", prompt), ("completion", completion)):
        if count:  # Ray's counters take only positive increments
            TOKENS.inc(count, tags={"kind": kind})
    ctx.state.tokens = {"prompt": prompt, "completion": completion}


def first_text_sent(ctx: RequestContext, stream: bool) -> None:
    TIME_TO_FIRST_TOKEN.observe(ctx.timer.total_ms(), tags={"stream": str(stream).lower()})


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


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


def tool_call_deltas(calls: Sequence[ToolCall]) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(index=i, id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))
        for i, call in enumerate(calls)
    ]


@dataclass
class StreamTail:
    """What a generator stream ends with besides its text: the tool calls to gate, and why generation stopped."""

    calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"


async def text_pieces(stream: AsyncIterator[str | ToolCall | StreamEnd], tail: StreamTail) -> AsyncIterator[str]:
    """The text of a generator stream; what it ends with is collected into `tail`."""
    async for piece in stream:
        if isinstance(piece, ToolCall):
            tail.calls.append(piece)
        elif isinstance(piece, StreamEnd):
            tail.finish_reason = piece.finish_reason
        else:
            yield piece


async def complete(
    gateway: Gateway,
    ctx: RequestContext,
    access: Access,
    request: ChatCompletionRequest,
    params: SamplingParams,
    request_text: str,
    input_verdict: Verdict | None = None,
) -> ChatCompletion:
    """Generate, moderate, and deliver the answer: refused if blocked, withheld with a review id if the input's
    or the answer's review category is in `hold` mode, else delivered (with redactions applied)."""
    with ctx.timer.stage("generate"):
        try:
            completion: Completion = await gateway.call(
                "generator",
                gateway.handles.generator.generate.remote(model_messages(request), params),
                gateway.config.timeouts.generate_s,
            )
        except ServiceUnavailable:
            await settle(gateway, ctx, access, 0)
            raise
    prompt_tokens, completion_tokens = tokens_spent(gateway, access, completion)
    await settle(gateway, ctx, access, prompt_tokens + completion_tokens)
    count_tokens(ctx, prompt_tokens, completion_tokens)
    verdict, calls = await moderate_answer(gateway, ctx, access, completion.text, completion.tool_calls, request_text)
    await report(gateway, ctx, access, verdict, request_text, output=completion.text)
    blocked = verdict.action is Action.BLOCK
    delivered = apply_redactions(completion.text, verdict.redactions)
    hold_verdict = next((v for v in (verdict, input_verdict) if holds(gateway, v)), None)
    review_id = None
    if hold_verdict is not None and not blocked:
        review_id = await hold_for_review(gateway, ctx, hold_verdict, request_text, delivered)
        decide(ctx, "held")
        delivered = held_message(review_id)
    elif blocked and holds(gateway, input_verdict):
        # Nothing is left to release, but the held request still gets its review, as an async one would.
        await enqueue_review(gateway, ctx, input_verdict, request_text, None)
    withheld = blocked or review_id is not None
    tool_calls = (
        None
        if withheld or not calls
        else [
            ToolCallOut(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments)) for call in calls
        ]
    )
    first_text_sent(ctx, stream=False)
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=request.model,
        choices=[
            Choice(
                message=AssistantMessage(
                    content=gateway.config.refusal_message if blocked else delivered, tool_calls=tool_calls
                ),
                finish_reason="content_filter" if withheld else completion.finish_reason,
            )
        ],
        safeserve_review_id=review_id,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )


def _sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def stream_whole(completion: ChatCompletion) -> AsyncIterator[str]:
    """A finished completion as SSE chunks (the review id included), for answers decided before streaming."""
    choice = completion.choices[0]
    head = {"id": completion.id, "created": completion.created, "model": completion.model}
    for delta, finish in (
        (Delta(role="assistant", content=choice.message.content), None),
        (Delta(), choice.finish_reason),
    ):
        chunk = ChatCompletionChunk(**head, choices=[ChunkChoice(delta=delta, finish_reason=finish)])
        yield _sse({**chunk.model_dump(exclude_none=True), "safeserve_review_id": completion.safeserve_review_id})
    yield _sse("[DONE]")


async def stream_completion(
    gateway: Gateway,
    ctx: RequestContext,
    access: Access,
    request: ChatCompletionRequest,
    params: SamplingParams,
    request_text: str,
) -> AsyncIterator[str]:
    """SSE events of a moderated stream.

    Each generated piece is cut into tokens (the ingress's tokenizer). The newest `holdback_tokens` tokens are
    withheld until the Moderator has checked the text that contains them, so a token is sent only after a check
    that saw at least that many tokens after it. Checks run while the generator goes on (one at a time, each on
    the whole text so far, the next as soon as the last is done and `check_every_tokens` new tokens are in), so
    the stream is not slowed to the Moderator's pace. Redactions are applied to held-back text as it is
    released; one that would reach into text already sent ends the stream with `content_filter`
    (`serve_app/streaming.py`). A review-band verdict of a `hold` category stops the release: the answer is
    generated to its end and queued whole, and the stream ends with the held notice.

    The decision is recorded once, as for a whole answer, with the strongest verdict any check drew: a window sent
    to review stays reviewed when the final check does not repeat it. A stream that ends before its answer is
    judged whole (the client left, a fault) records the strongest verdict so far (`report_unfinished`).
    """
    window = gateway.config.stream_moderation
    chunk_id, created = completion_id(), int(time.time())

    def chunk(delta: Delta, finish_reason: str | None = None, **extra: str) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish_reason)
        body = ChatCompletionChunk(id=chunk_id, created=created, model=request.model, choices=[choice])
        return _sse({**body.model_dump(exclude_none=True), **extra})

    sent_text = False

    def content(text: str) -> str:
        nonlocal sent_text
        if not sent_text:
            first_text_sent(ctx, stream=True)
            sent_text = True
        return chunk(Delta(content=text))

    yield chunk(Delta(role="assistant", content=""))
    held = StreamWindow(holdback=window.holdback_tokens, split=gateway.tokens.split)
    stream = gateway.handles.generator.options(stream=True).stream.remote(model_messages(request), params)
    tail = StreamTail()
    pieces = text_pieces(stream, tail)
    next_piece: asyncio.Future | None = asyncio.ensure_future(pieces.__anext__())
    check: asyncio.Future | None = None
    checked = unchecked = 0  # pending tokens the running check covers; tokens added since it started
    hold: Verdict | None = None  # a `hold` category's review verdict: nothing more is sent
    recorded = False  # the decision on this answer is recorded (or being recorded)
    try:
        while next_piece is not None or check is not None:
            await asyncio.wait([f for f in (next_piece, check) if f is not None], return_when=FIRST_COMPLETED)
            if next_piece is not None and next_piece.done():
                try:
                    unchecked += held.add(next_piece.result())
                    next_piece = asyncio.ensure_future(pieces.__anext__())
                except StopAsyncIteration:
                    next_piece = None
            if check is not None and check.done():
                verdict, check = check.result(), None
                if holds(gateway, verdict):
                    hold, ready = verdict, []
                else:
                    ready, verdict = held.release(verdict, checked=checked)
                if ready is None:
                    recorded = True
                    await run_to_end(report(gateway, ctx, access, verdict, request_text, output=held.text))
                    yield chunk(Delta(), "content_filter")
                    yield _sse("[DONE]")
                    return
                for text in ready:
                    yield content(text)
            if check is None and hold is None and next_piece is not None and unchecked >= window.check_every_tokens:
                checked, unchecked = len(held.pending), 0
                check = asyncio.ensure_future(moderate(gateway, ctx, access, held.text, request_text))
        text = held.text
        verdict, calls = await moderate_answer(gateway, ctx, access, text, tail.calls, request_text)
        verdict = held.answer_verdict(verdict)
        if hold is not None and verdict.action is not Action.BLOCK and not holds(gateway, verdict):
            verdict = replace(hold, redactions=verdict.redactions)
        recorded = True
        if holds(gateway, verdict):
            review_id = await run_to_end(withhold_stream(gateway, ctx, access, verdict, request_text, text))
            yield chunk(Delta(content=held_message(review_id)), safeserve_review_id=review_id)
            yield chunk(Delta(), "content_filter", safeserve_review_id=review_id)
            yield _sse("[DONE]")
            return
        ready, verdict = held.release(verdict, final=True)
        await run_to_end(report(gateway, ctx, access, verdict, request_text, output=text))
        if ready is None:
            yield chunk(Delta(), "content_filter")
        else:
            for piece in ready:
                yield content(piece)
            if calls:
                yield chunk(Delta(tool_calls=tool_call_deltas(calls)), "tool_calls")
            else:
                yield chunk(Delta(), tail.finish_reason)
    except SafeServeError as exc:
        yield _sse(error_body(exc.message, exc.error_type, exc.code, request_id=ctx.request_id))
    except Exception:
        INFRA_ERRORS.inc(tags={"component": "generator", "outcome": "stream_aborted"})
        logger.exception("stream %s failed", ctx.request_id)
        message = "The generator failed mid-stream."
        yield _sse(error_body(message, "server_error", "generator_unavailable", request_id=ctx.request_id))
    finally:
        for pending in (next_piece, check):
            if pending is not None:
                pending.cancel()
        stream.cancel()
        flagged = hold if hold is not None else held.flagged
        if not recorded and flagged is not None:
            await run_to_end(report_unfinished(gateway, ctx, access, flagged, request_text, held.text))
        # Tokens actually spent: the prompt as counted at admission, and the tokens generated (withheld included,
        # tool calls too).
        completion_tokens = output_tokens(gateway, held.text, tail.calls)
        await settle(gateway, ctx, access, access.prompt_tokens + completion_tokens)
        count_tokens(ctx, access.prompt_tokens, completion_tokens)
    yield _sse("[DONE]")
