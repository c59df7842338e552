"""A chat completion as server-sent events: a moderated stream whose newest tokens are held back until the
Moderator has checked them, and a completion decided before streaming sent as one."""

from __future__ import annotations

import asyncio
import json
import time
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from classifiers.verdict import Action, Verdict
from deployments.generation import StreamEnd, ToolCall
from deployments.logs import get_logger
from serve_app.chat.records import (
    held_message,
    record_decision,
    record_unfinished_stream,
    run_to_end,
    withhold_stream,
    withholds_answer,
)
from serve_app.chat.safety import moderate, moderate_answer
from serve_app.chat.translate import completion_id, model_messages, tool_call_deltas
from serve_app.chat.turn import ChatTurn
from serve_app.chat.usage import count_tokens, first_text_sent, output_tokens
from serve_app.errors import SafeServeError, error_body
from serve_app.metrics import INFRA_ERRORS
from serve_app.schemas.chat import ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta
from serve_app.streaming import StreamWindow

logger = get_logger("chat")


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


async def stream_completion(turn: ChatTurn) -> AsyncIterator[str]:
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
    judged whole (the client left, a fault) records the strongest verdict so far (`record_unfinished_stream`).
    """
    gateway, ctx, access, request_text = turn.gateway, turn.ctx, turn.access, turn.request_text
    window = gateway.config.stream_moderation
    chunk_id, created = completion_id(), int(time.time())

    def chunk(delta: Delta, finish_reason: str | None = None, **extra: str) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish_reason)
        body = ChatCompletionChunk(id=chunk_id, created=created, model=turn.body.model, choices=[choice])
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
    stream = gateway.handles.generator.options(stream=True).stream.remote(model_messages(turn.body), turn.params)
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
                if withholds_answer(gateway, verdict):
                    hold, ready = verdict, []
                else:
                    ready, verdict = held.release(verdict, checked=checked)
                if ready is None:
                    recorded = True
                    await run_to_end(record_decision(gateway, ctx, access, verdict, request_text, output=held.text))
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
        if hold is not None and verdict.action is not Action.BLOCK and not withholds_answer(gateway, verdict):
            verdict = replace(hold, redactions=verdict.redactions)
        recorded = True
        if withholds_answer(gateway, verdict):
            review_id = await run_to_end(withhold_stream(gateway, ctx, access, verdict, request_text, text))
            yield chunk(Delta(content=held_message(review_id)), safeserve_review_id=review_id)
            yield chunk(Delta(), "content_filter", safeserve_review_id=review_id)
            yield _sse("[DONE]")
            return
        ready, verdict = held.release(verdict, final=True)
        await run_to_end(record_decision(gateway, ctx, access, verdict, request_text, output=text))
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
            await run_to_end(record_unfinished_stream(gateway, ctx, access, flagged, request_text, held.text))
        # Tokens actually spent: the prompt as counted at admission, and the tokens generated (withheld included,
        # tool calls too).
        completion_tokens = output_tokens(gateway, held.text, tail.calls)
        await turn.settle(access.prompt_tokens + completion_tokens)
        count_tokens(ctx, access.prompt_tokens, completion_tokens)
    yield _sse("[DONE]")
