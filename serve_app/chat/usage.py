"""What a chat request spent: its prompt and completion tokens, and the time to its first text."""

from __future__ import annotations

from collections.abc import Sequence

from deployments.generation import Completion, ToolCall
from serve_app.access import Access
from serve_app.deps import RequestContext
from serve_app.gateway import Gateway
from serve_app.metrics import TIME_TO_FIRST_TOKEN, TOKENS


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
