"""The protocol a generator backend implements, and the values that cross it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    tier: str | None = None  # picks the tier's steering, if it has its own


@dataclass(frozen=True)
class ToolCall:
    """A function call the model emitted (backends whose model can call tools)."""

    id: str
    name: str
    arguments: str  # JSON, as the model wrote it


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "tool_calls", as in the OpenAI API
    tool_calls: tuple[ToolCall, ...] = ()


class GeneratorBackend(Protocol):
    def generate(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion: ...

    def generate_batch(
        self, conversations: list[list[dict[str, str]]], params: list[SamplingParams]
    ) -> list[Completion]:
        """One answer per conversation, in order: what the Generator calls with concurrent requests."""
        ...

    def stream(self, messages: list[dict[str, str]], params: SamplingParams) -> Iterator[str]:
        """Yield text pieces as they are generated; closing the iterator stops generation."""
        ...
