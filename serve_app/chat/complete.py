"""A chat completion answered whole: generate, moderate, record the decision, and deliver, refuse or withhold."""

from __future__ import annotations

import time

from classifiers.verdict import Action, apply_redactions
from deployments.generation import Completion
from serve_app.chat.records import (
    decide,
    enqueue_review,
    held_message,
    hold_for_review,
    record_decision,
    withholds_answer,
)
from serve_app.chat.safety import moderate_answer
from serve_app.chat.translate import completion_id, model_messages
from serve_app.chat.turn import ChatTurn
from serve_app.chat.usage import count_tokens, first_text_sent, tokens_spent
from serve_app.errors import ServiceUnavailable
from serve_app.schemas.chat import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    FunctionCall,
    ToolCallOut,
    Usage,
)


async def complete(turn: ChatTurn) -> ChatCompletion:
    """Generate, moderate, and deliver the answer: refused if blocked, withheld with a review id if the input's
    or the answer's review category is in `hold` mode, else delivered (with redactions applied)."""
    gateway, ctx, access, request_text = turn.gateway, turn.ctx, turn.access, turn.request_text
    with ctx.timer.stage("generate"):
        try:
            completion: Completion = await gateway.call(
                "generator",
                gateway.handles.generator.generate.remote(model_messages(turn.body), turn.params),
                gateway.config.timeouts.generate_s,
            )
        except ServiceUnavailable:
            await turn.settle(0)
            raise
    prompt_tokens, completion_tokens = tokens_spent(gateway, access, completion)
    await turn.settle(prompt_tokens + completion_tokens)
    count_tokens(ctx, prompt_tokens, completion_tokens)
    verdict, calls = await moderate_answer(gateway, ctx, access, completion.text, completion.tool_calls, request_text)
    await record_decision(gateway, ctx, access, verdict, request_text, output=completion.text)
    blocked = verdict.action is Action.BLOCK
    delivered = apply_redactions(completion.text, verdict.redactions)
    hold_verdict = next((v for v in (verdict, turn.input_verdict) if withholds_answer(gateway, v)), None)
    review_id = None
    if hold_verdict is not None and not blocked:
        review_id = await hold_for_review(gateway, ctx, hold_verdict, request_text, delivered)
        decide(ctx, "held")
        delivered = held_message(review_id)
    elif blocked and withholds_answer(gateway, turn.input_verdict):
        # Nothing is left to release, but the held request still gets its review, as an async one would.
        await enqueue_review(gateway, ctx, turn.input_verdict, request_text, None)
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
        model=turn.body.model,
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
