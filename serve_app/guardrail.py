"""SafeServe as a guardrail of another gateway (LiteLLM's Generic Guardrail API, docs/litellm.md): the chat
route's input and output stacks on texts LiteLLM sends, without generation. Nothing is checked here that the
chat route does not check; the functions of serve_app/chat/ do the checking and the recording.

- `request` (LiteLLM's pre_call): admission (suspension, the tool gate on the tools offered, rate limits and
  token quotas on the prompt), then the input screen (deny patterns, intent) over every untrusted message.
- `response` (post_call, and each round on a stream's growing answer): the Moderator on each text and on the
  arguments of the answer's tool calls, then the tool gate on the calls. Redactions come back as
  GUARDRAIL_INTERVENED; the characters at the end of the answer that the stream must still withhold as
  `stream_holdback_chars`.

LiteLLM calls once per round of a stream, each time with the whole answer so far; decisions are recorded
(incident, reputation, review item) once per LiteLLM call id and decision (`first_record`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from redis.exceptions import RedisError

from classifiers.normalize import views
from classifiers.sensitive_data import open_tail_start
from classifiers.verdict import Action, Verdict, apply_redactions
from deployments.generation import ToolCall
from deployments.logs import get_logger
from serve_app.access import Access, admit
from serve_app.chat.records import decide, enqueue_review, record_decision, withholds_answer
from serve_app.chat.safety import moderate_answer, screen_input
from serve_app.chat.translate import request_text
from serve_app.deps import RequestContext
from serve_app.gateway import Gateway
from serve_app.metrics import INFRA_ERRORS
from serve_app.schemas.admin import ApiKeyInfo
from serve_app.schemas.guardrail import GuardrailRequest, GuardrailResponse

logger = get_logger("guardrail")
# Roles whose key may say which end user a check is for (`request_data.user_api_key_user_id`): a gateway's
# service key, and the admin key. Any other key is its own user whatever the body says, so a user's key
# cannot spend another user's limits or spoil another user's reputation.
NAMING_ROLES = ("gateway", "admin")
_PLAIN_USER_ID = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
NONE = GuardrailResponse(action="NONE")


def acting_for(key: ApiKeyInfo, litellm_user_id: str | None) -> ApiKeyInfo:
    """The identity the checks, limits and reputation of a call are for: the end user LiteLLM names, under the
    calling key's user (`<key user>:<LiteLLM user>`, so that LiteLLM's user ids never meet SafeServe's own), when
    the key's role may name one; else the key itself. A named user is never an admin: their reputation counts."""
    if not litellm_user_id or key.role not in NAMING_ROLES:
        return key
    user = litellm_user_id
    if not _PLAIN_USER_ID.match(user):
        user = "h-" + hashlib.sha256(user.encode()).hexdigest()[:16]
    return key.model_copy(update={"id": f"{key.id}:{user}", "user_id": f"{key.user_id}:{user}", "role": "user"})


def blocked(reason: str) -> GuardrailResponse:
    return GuardrailResponse(action="BLOCKED", blocked_reason=reason)


async def check_request(gateway: Gateway, ctx: RequestContext, body: GuardrailRequest) -> GuardrailResponse:
    """The input stack; a block raises PolicyViolation (the router answers it as BLOCKED)."""
    texts = body.untrusted_texts()
    if body.tools:
        texts.append(body.tools_text())
    if not texts:
        return NONE
    chars = sum(len(text) for text in texts)
    if chars > gateway.config.max_prompt_chars:
        return blocked(f"The prompt has {chars} characters; the limit is {gateway.config.max_prompt_chars}.")
    with ctx.timer.stage("limits"):
        access = await admit(gateway, ctx, texts, max_tokens=0, tools=body.tool_names() or None)
    turn_views = [views(text) for text in texts]
    verdict = await screen_input(gateway, ctx, access, turn_views)
    if withholds_answer(gateway, verdict):
        # The chat route would generate and hold the answer for a reviewer; LiteLLM's answer cannot be held
        # here, so the request is refused and the reviewer gets it as an async item.
        await enqueue_review(gateway, ctx, verdict, request_text(turn_views), None)
        decide(ctx, "held")
        return blocked(f"This request needs human review (category: {verdict.category}).")
    return NONE


async def check_response(gateway: Gateway, ctx: RequestContext, body: GuardrailRequest) -> GuardrailResponse:
    """The output stack on each text (the first with the answer's tool calls), recorded once per call id."""
    with ctx.timer.stage("limits"):
        access = await admit(gateway, ctx, [], max_tokens=0, reserve=False)
    texts = body.texts or []
    calls = tool_calls(body)
    checked = [
        await moderate_answer(gateway, ctx, access, text, calls if i == 0 else [], "")
        for i, text in enumerate(texts or [""])
    ]
    verdicts = [verdict for verdict, _calls in checked]
    if checked and any(
        redacted.arguments != call.arguments for redacted, call in zip(checked[0][1], calls, strict=False)
    ):
        # LiteLLM takes no tool calls back: arguments that need a redaction cannot be delivered redacted.
        verdicts[0] = replace(
            verdicts[0], action=Action.BLOCK, score=1.0, reasons=(*verdicts[0].reasons, "tool_call:unredactable")
        )
    verdict = max(verdicts, key=lambda v: (v.action.rank, bool(v.redactions), v.score))
    answer = "\n".join(texts)
    await record_once(gateway, ctx, access, body, verdict, answer)
    if verdict.action is Action.BLOCK:
        return blocked(f"The answer was blocked by SafeServe's {verdict.layer} layer (category: {verdict.category}).")
    if withholds_answer(gateway, verdict):
        return blocked(f"The answer needs human review (category: {verdict.category}).")
    holdback = [holdback_chars(gateway, text) for text in texts]
    if not texts or not any(v.redactions for v in verdicts):
        return GuardrailResponse(action="NONE", stream_holdback_chars=holdback or None)
    return GuardrailResponse(
        action="GUARDRAIL_INTERVENED",
        texts=[apply_redactions(text, v.redactions) for text, v in zip(texts, verdicts, strict=True)],
        stream_holdback_chars=holdback,
    )


def tool_calls(body: GuardrailRequest) -> list[ToolCall]:
    return [
        ToolCall(id=call.id or f"call-{i}", name=call.function.name or "", arguments=call.function.arguments or "")
        for i, call in enumerate(body.tool_calls or ())
        if call.function is not None
    ]


def holdback_chars(gateway: Gateway, text: str) -> int:
    """How much of the end of `text` a stream must still withhold: the configured window, or more while a secret's
    prefix or a digit run is open at the end (its first characters match no detector yet, serve_app/streaming.py)."""
    holdback = gateway.config.guardrail_api.stream_holdback_chars
    start = open_tail_start(text)
    return holdback if start is None else max(holdback, len(text) - start)


async def record_once(
    gateway: Gateway, ctx: RequestContext, access: Access, body: GuardrailRequest, verdict: Verdict, answer: str
) -> None:
    """Record an answer's decision (incident, reputation, review item) unless this LiteLLM call already recorded
    the same decision: a stream is checked every few chunks, each time whole so far."""
    outcome = "redacted" if verdict.redactions and verdict.action is Action.ALLOW else str(verdict.action)
    if not await first_record(gateway, body.litellm_call_id, outcome):
        decide(ctx, "content_filter" if verdict.action is Action.BLOCK else outcome)
        return
    await record_decision(gateway, ctx, access, verdict, "", output=answer)
    if withholds_answer(gateway, verdict):  # the answer cannot be held here: reviewed after the fact
        await enqueue_review(gateway, ctx, verdict, "", answer)


async def first_record(gateway: Gateway, call_id: str | None, outcome: str) -> bool:
    """Whether `outcome` is new for this LiteLLM call. Without a call id, or with Redis failing, every check
    records: a decision recorded twice is better than one lost."""
    if not call_id:
        return True
    key = f"safeserve:guardrail:{hashlib.sha256(call_id.encode()).hexdigest()[:32]}:{outcome}"
    try:
        return bool(await gateway.redis.set(key, 1, nx=True, ex=gateway.config.guardrail_api.dedupe_ttl_s))
    except RedisError as exc:
        INFRA_ERRORS.inc(tags={"component": "redis", "outcome": "guardrail_dedupe_failed"})
        logger.warning("guardrail dedupe failed: %s", exc.__class__.__name__)
        return True
