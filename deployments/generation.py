"""The protocol a generator backend implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# An OpenAI chat message: role and content, plus `tool_calls` (assistant) or `tool_call_id` (tool) where set.
Message = dict[str, Any]


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    tier: str | None = None  # picks the tier's steering, if it has its own
    # The request's tools and tool_choice as OpenAI takes them, already passed by the capability gate.
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    banned: tuple[str, ...] = ()  # phrases constrained decoding makes impossible (transformers backend)
    # Against a small model's loops (transformers backend), over the answer's own tokens: 1.0 and 0 are off.
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0


@dataclass(frozen=True)
class ToolCall:
    """A function call the model emitted (backends whose model can call tools)."""

    id: str
    name: str
    arguments: str  # JSON, as the model wrote it


@dataclass(frozen=True)
class StreamEnd:
    """The last item of a stream that ran to its end: why generation stopped ("stop" or "length", as in the
    OpenAI API). Only the backend knows: the model's own token count and end-of-sequence decide it."""

    finish_reason: str


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "tool_calls", as in the OpenAI API
    tool_calls: tuple[ToolCall, ...] = ()


class GeneratorBackend(Protocol):
    """A model run in the Generator's own process: blocking calls, which the Generator runs in a thread and
    gathers concurrent requests for into one batch."""

    # Whether the model takes `tools` and tool turns (assistant `tool_calls`, `tool` messages) natively.
    tool_use: bool
    runs_model: Literal[True]

    def generate(self, messages: list[Message], params: SamplingParams) -> Completion: ...

    def generate_batch(self, conversations: list[list[Message]], params: list[SamplingParams]) -> list[Completion]:
        """One answer per conversation, in order: what the Generator calls with concurrent requests."""
        ...

    def stream(self, messages: list[Message], params: SamplingParams) -> Iterator[str | ToolCall | StreamEnd]:
        """Yield text pieces as they are generated, then each whole tool call the model made, then a StreamEnd;
        closing the iterator stops generation."""
        ...


class ServerBackend(Protocol):
    """A model server elsewhere (OpenAI-compatible): asynchronous calls, relayed as they come, since the server
    batches concurrent requests itself."""

    tool_use: bool
    runs_model: Literal[False]

    async def generate(self, messages: list[Message], params: SamplingParams) -> Completion: ...

    def stream(self, messages: list[Message], params: SamplingParams) -> AsyncIterator[str | ToolCall | StreamEnd]:
        """As GeneratorBackend.stream; closing the iterator (`aclose`) closes the server's stream."""
        ...
