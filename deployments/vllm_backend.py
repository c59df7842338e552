"""Generation by vLLM running in the application's own LLMServer deployment (Ray Serve LLM, `ray.serve.llm`).

The builder adds the LLMServer to the graph from the `llm` section of its args (a Ray Serve LLM `LLMConfig`) and
binds its handle to the Generator, which calls it with an OpenAI chat completion request as plain data and reads
back the server-sent events Ray's own OpenAI ingress would send (deployments/llm_server.py). Plain data crosses
the handle, so the Generator's process needs neither vLLM nor its request models.

Every request is streamed from vLLM, with usage in its last chunk: a whole answer is the stream read to its end,
so both paths share one parser. vLLM batches concurrent requests itself, so the Generator relays each as it
comes, as it does for an upstream server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ray.serve.handle import DeploymentHandle

from deployments.generation import Completion, Message, SamplingParams, StreamEnd, ToolCall
from deployments.logs import get_logger
from deployments.openai_upstream_backend import ToolCallParts, chat_body, finish_reason, read_choice

logger = get_logger("generator")
DONE = "[DONE]"


class LLMError(RuntimeError):
    """The LLMServer refused the request or sent something that is not a chat completion stream."""


def checked_llm_section(section: dict[str, Any]) -> dict[str, Any]:
    """`section` if Ray Serve LLM accepts it as an LLMConfig and it names its weights by a local path; else a
    ValueError that names the bad field. The pods run offline (HF_HUB_OFFLINE=1), so a hub id cannot load."""
    # ray.serve.llm re-exports this class, but imports vLLM's request models first; the config needs no vLLM.
    from pydantic import ValidationError
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    try:
        config = LLMConfig.model_validate(section)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    source = config.model_loading_config.model_source
    if source is None:
        raise ValueError("model_loading_config.model_source is required: the path to the weights (or a cloud mirror)")
    if isinstance(source, str) and not PurePosixPath(source).is_absolute():
        raise ValueError(
            f"model_loading_config.model_source must be an absolute path to the weights (or a cloud mirror), not "
            f"{source!r}: the pods run offline"
        )
    return section


@dataclass
class ChatStream:
    """A streamed chat completion as it arrives: fed the LLMServer's packets, it returns their text and keeps the
    tool calls, the finish reason and the usage."""

    calls: dict[int, ToolCallParts] = field(default_factory=dict)
    reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    done: bool = False

    def feed(self, packet: str) -> list[str]:
        """The text of one packet: one or more `data: <json>` events (Ray batches the chunks of a few ms)."""
        pieces = []
        for line in packet.splitlines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == DONE:
                self.done = True
                continue
            content = self._chunk(payload)
            if content:
                pieces.append(content)
        return pieces

    def _chunk(self, payload: str) -> str | None:
        try:
            chunk = json.loads(payload)
            if "error" in chunk:
                error = chunk["error"]
                raise LLMError(f"vLLM answered {error.get('code')}: {str(error.get('message'))[:200]}")
            self.usage = chunk.get("usage") or self.usage
            if not chunk["choices"]:  # the usage chunk
                return None
            content, reason = read_choice(chunk["choices"][0], self.calls)
            self.reason = reason or self.reason
            return content
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(f"LLMServer sent something that is not a chat completion chunk: {exc!r}") from exc

    def tool_calls(self) -> tuple[ToolCall, ...]:
        try:
            return tuple(self.calls[index].call() for index in sorted(self.calls))
        except RuntimeError as exc:
            raise LLMError(str(exc)) from exc

    def completion(self, text: str) -> Completion:
        calls = self.tool_calls()
        return Completion(
            text=text,
            prompt_tokens=int(self.usage.get("prompt_tokens", 0)),
            completion_tokens=int(self.usage.get("completion_tokens", 0)),
            finish_reason=finish_reason(self.reason, bool(calls)),
            tool_calls=calls,
        )


class VLLMBackend:
    runs_model = False  # vLLM batches concurrent requests itself: the Generator relays each as it comes

    def __init__(self, llm: DeploymentHandle | None, section: dict[str, Any] | None) -> None:
        if llm is None or section is None:
            raise ValueError(
                "backend vllm needs the LLMServer deployment: set `llm` (a Ray Serve LLM config) in the "
                "application's args"
            )
        self._llm = llm.options(stream=True)
        self.model = section["model_loading_config"]["model_id"]
        # vLLM parses tool calls only with a parser configured; without one, tool turns reach it as data.
        self.tool_use = bool((section.get("engine_kwargs") or {}).get("enable_auto_tool_choice"))
        logger.info("generating with the LLMServer deployment (model %s)", self.model)

    def request(self, messages: list[Message], params: SamplingParams) -> dict[str, Any]:
        """The chat completion request the LLMServer receives for `messages` (already steered)."""
        body = chat_body(self.model, messages, params, stream=True, tools=self.tool_use)
        return {**body, "stream_options": {"include_usage": True}}

    async def _text(self, chat: ChatStream, messages: list[Message], params: SamplingParams) -> AsyncIterator[str]:
        packets = self._llm.chat_sse.remote(self.request(messages, params))
        try:
            async for packet in packets:
                for piece in chat.feed(packet):
                    yield piece
        finally:
            if not chat.done:  # the caller left, or the stream broke: stop generating for nobody
                packets.cancel()

    async def generate(self, messages: list[Message], params: SamplingParams) -> Completion:
        chat = ChatStream()
        text = [piece async for piece in self._text(chat, messages, params)]
        return chat.completion("".join(text))

    async def stream(
        self, messages: list[Message], params: SamplingParams
    ) -> AsyncIterator[str | ToolCall | StreamEnd]:
        """As OpenAIUpstreamBackend.stream: the text as it comes, then the tool calls, then the finish reason."""
        chat = ChatStream()
        async for piece in self._text(chat, messages, params):
            yield piece
        for call in chat.tool_calls():
            yield call
        yield StreamEnd(finish_reason(chat.reason, tool_calls=False))
