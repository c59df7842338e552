"""Translation between the OpenAI chat schema and the Generator's terms: the request as the safety checks and the
model take it (the texts to screen, the messages, the sampling parameters), and the ids and tool-call deltas of
the response."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from classifiers.normalize import views
from deployments.generation import Message, SamplingParams, ToolCall
from serve_app.deps import RequestContext
from serve_app.gateway import Gateway
from serve_app.schemas.chat import ChatCompletionRequest, FunctionCall, NamedToolChoice, ToolCallDelta

# A temperature this small samples as greedy decoding does; below about 1e-37 the logits divided by it overflow
# float32 and the model run fails ("probability tensor contains inf"), which a caller must not be able to cause.
GREEDY_BELOW_TEMPERATURE = 1e-3


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


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def tool_call_deltas(calls: Sequence[ToolCall]) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(index=i, id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))
        for i, call in enumerate(calls)
    ]
