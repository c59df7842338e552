"""Generation by any OpenAI-compatible server (vLLM, a Ray Serve LLM app, another gateway): SafeServe guards a
model server that already exists.

Connection errors, 429 and 5xx are retried with exponential backoff, but only before any output: a stream
that has started is never replayed (the client would see text twice). An upstream that sends nothing for
`timeout_s` (httpx's read timeout: it bounds each wait for data, not the whole answer) fails at once with an
UpstreamError that says so; a server that slow is not retried. The API key, if the upstream wants one,
comes from the environment variable the config names, never from the config itself.

The backend is asynchronous: the Generator relays each request as it comes (the upstream batches concurrent
requests itself), with no batching window and no thread per request or per streamed chunk.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from deployments.config import GeneratorConfig, UpstreamConfig
from deployments.generation import Completion, Message, SamplingParams, StreamEnd, ToolCall
from deployments.logs import get_logger

logger = get_logger("generator")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def finish_reason(reason: str | None, tool_calls: bool) -> str:
    """The upstream's finish reason in the OpenAI schema: servers send others too (`eos_token`, `abort`), which
    mean the answer ended."""
    if tool_calls:
        return "tool_calls"
    return reason if reason in ("length", "content_filter") else "stop"


def chat_body(model: str, messages: list[Message], params: SamplingParams, *, stream: bool, tools: bool = True) -> dict:
    """The OpenAI chat completion request for `messages` (already steered); `tools: False` leaves out the
    request's tools, for a server that cannot call them."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": stream,
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if tools and params.tools:
        body["tools"] = list(params.tools)
    if tools and params.tool_choice is not None:
        body["tool_choice"] = params.tool_choice
    return body


def read_choice(choice: dict, calls: dict[int, ToolCallParts]) -> tuple[str | None, str | None]:
    """A stream chunk's first choice: its content and its finish reason; its tool-call fragments go into `calls`,
    by index."""
    delta = choice.get("delta") or {}
    for part in delta.get("tool_calls") or ():
        calls.setdefault(part.get("index", 0), ToolCallParts()).add(part)
    return delta.get("content"), choice.get("finish_reason")


class UpstreamError(RuntimeError):
    """The upstream failed or answered with something that is not an OpenAI chat completion."""


class OpenAIUpstreamBackend:
    tool_use = True
    runs_model = False  # the Generator relays each request as it comes, with no batching window

    def __init__(self, config: GeneratorConfig) -> None:
        self.upstream: UpstreamConfig = config.upstream
        headers = {}
        api_key = os.environ.get(self.upstream.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        timeout = httpx.Timeout(self.upstream.timeout_s, connect=self.upstream.connect_timeout_s)
        # No pool limit of its own: the Generator's max_ongoing_requests bounds the requests in flight.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(
            base_url=self.upstream.url.rstrip("/"), headers=headers, timeout=timeout, limits=limits
        )
        logger.info("guarding upstream %s (model %s)", self.upstream.url, self.upstream.model)

    def _body(self, messages: list[Message], params: SamplingParams, stream: bool) -> dict:
        return chat_body(self.upstream.model, messages, params, stream=stream)

    async def _send(self, body: dict) -> httpx.Response:
        """POST /chat/completions, streamed, retried on connection errors, 429 and 5xx until it answers 200."""
        attempt = 0
        while True:
            try:
                request = self._client.build_request("POST", "/chat/completions", json=body)
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ReadTimeout) or attempt >= self.upstream.max_retries:
                    raise self._failure(exc) from exc
            else:
                if response.status_code == 200:
                    return response
                await response.aread()
                await response.aclose()
                if response.status_code not in RETRY_STATUSES or attempt >= self.upstream.max_retries:
                    raise UpstreamError(f"upstream answered {response.status_code}: {response.text[:200]}")
            attempt += 1
            await asyncio.sleep(min(0.25 * 2**attempt, 4.0))

    def _failure(self, exc: httpx.TransportError) -> UpstreamError:
        if isinstance(exc, httpx.ReadTimeout):
            return UpstreamError(f"upstream sent nothing for {self.upstream.timeout_s:g} s (timeout_s)")
        return UpstreamError(f"upstream unreachable: {exc.__class__.__name__}")

    async def generate(self, messages: list[Message], params: SamplingParams) -> Completion:
        response = await self._send(self._body(messages, params, stream=False))
        try:
            data = json.loads(await response.aread())
            choice = data["choices"][0]
            message = choice["message"]
            usage = data.get("usage") or {}
            calls = tuple(
                ToolCall(id=call["id"], name=call["function"]["name"], arguments=call["function"].get("arguments", ""))
                for call in message.get("tool_calls") or ()
            )
        except httpx.TransportError as exc:
            raise self._failure(exc) from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(f"upstream answer is not a chat completion: {exc!r}") from exc
        finally:
            await response.aclose()
        return Completion(
            text=message.get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
            tool_calls=calls,
        )

    async def stream(
        self, messages: list[Message], params: SamplingParams
    ) -> AsyncIterator[str | ToolCall | StreamEnd]:
        """The upstream's content deltas as they arrive, then its tool calls, each assembled from its deltas, then
        its finish reason; closing the iterator closes the upstream stream."""
        response = await self._send(self._body(messages, params, stream=True))
        calls: dict[int, ToolCallParts] = {}
        reason = None
        try:
            async for line in self._lines(response):
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    content, chunk_reason = read_choice(json.loads(payload)["choices"][0], calls)
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise UpstreamError(f"upstream stream chunk is not a chat completion chunk: {exc!r}") from exc
                reason = chunk_reason or reason
                if content:
                    yield content
        finally:
            await response.aclose()
        for index in sorted(calls):
            yield calls[index].call()
        # Tool calls are the gateway's to announce once gated; the upstream's own filter is passed on.
        yield StreamEnd(finish_reason(reason, tool_calls=False))

    async def _lines(self, response: httpx.Response) -> AsyncIterator[str]:
        try:
            async for line in response.aiter_lines():
                yield line
        except httpx.TransportError as exc:
            raise self._failure(exc) from exc


@dataclass
class ToolCallParts:
    """One streamed tool call: OpenAI sends its id and name first, then its arguments in fragments."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, part: dict) -> None:
        self.id = part.get("id") or self.id
        function = part.get("function") or {}
        self.name += function.get("name") or ""
        self.arguments.append(function.get("arguments") or "")

    def call(self) -> ToolCall:
        if not self.id or not self.name:
            raise UpstreamError("upstream streamed a tool call without an id or a name")
        return ToolCall(id=self.id, name=self.name, arguments="".join(self.arguments))
