"""The vllm backend against a scripted LLMServer handle: the request it sends (steered, with the Generator's limits),
and the streaming adapter on the packets Ray's LLMServer sends back, in the shapes Ray 2.60 gives them:
`LLMServer.chat` on a streamed request yields lists of vLLM's `data: <json>` strings, batched every few ms
(utils/batcher.py), and `_openai_json_wrapper` (core/ingress/utils.py) joins each list into one string and ends
the stream with `data: [DONE]`. No GPU and no vLLM needed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from classifiers.steering import OPERATOR_HEADER
from deployments.generation import SamplingParams, StreamEnd, ToolCall
from deployments.generator import Generator
from deployments.vllm_backend import ChatStream, LLMError, VLLMBackend

SECTION = {"model_loading_config": {"model_id": "safeserve-smollm2", "model_source": "/models/smollm2"}}
QUESTION = [{"role": "user", "content": "Describe a glacier."}]


def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict | None = None) -> str:
    """One event as vLLM's chat stream writes it (ChatCompletionStreamResponse.model_dump_json())."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": "safeserve-smollm2",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n"


USAGE = {"prompt_tokens": 31, "total_tokens": 36, "completion_tokens": 5}
DONE = "data: [DONE]\n\n"
# A glacier answer as the LLMServer batches it: the role chunk and two words in the first packet, and so on.
GLACIER = [
    chunk({"role": "assistant", "content": ""}) + chunk({"content": "A glacier"}) + chunk({"content": " is"}),
    chunk({"content": " slow ice."}),
    chunk({"content": ""}, finish="length") + chunk(None, usage=USAGE),
    DONE,
]
WEATHER_CALL = [
    chunk({"role": "assistant", "content": None}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}]})
    + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}, finish="tool_calls"),
    chunk(None, usage=USAGE) + DONE,
]
# vLLM's ErrorResponse, as `_openai_json_wrapper` writes it (model_dump_json()).
ERROR_INFO = {"message": "max_tokens is too large", "type": "BadRequestError", "param": None, "code": 400}
ERROR = f"data: {json.dumps({'error': ERROR_INFO})}\n\n"


class ScriptedPackets:
    """What `handle.options(stream=True).chat_sse.remote(body)` returns: an async iterator of packets that can be
    cancelled (DeploymentResponseGenerator)."""

    def __init__(self, packets: list[str], stall: bool) -> None:
        self._packets = packets
        self._stall = stall
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._read()

    async def _read(self) -> AsyncIterator[str]:
        for packet in self._packets:
            await asyncio.sleep(0)
            yield packet
        if self._stall:
            await asyncio.Event().wait()

    def cancel(self) -> None:
        self.cancelled = True


class ScriptedLLMServer:
    """A DeploymentHandle to GeneratorLLMServer that answers every request with the same packets and keeps the
    requests it received and the calls it was cancelled in."""

    def __init__(self, packets: list[str], stall: bool = False) -> None:
        self.packets = packets
        self.stall = stall
        self.requests: list[dict] = []
        self.calls: list[ScriptedPackets] = []
        self.streaming = False

    def options(self, *, stream: bool) -> ScriptedLLMServer:
        self.streaming = stream
        return self

    @property
    def chat_sse(self) -> ScriptedLLMServer:
        return self

    def remote(self, body: dict) -> ScriptedPackets:
        assert self.streaming, "LLMServer's chat streams: the handle must be a streaming one"
        self.requests.append(json.loads(json.dumps(body)))  # what crosses the handle is plain data
        self.calls.append(ScriptedPackets(self.packets, self.stall))
        return self.calls[-1]


def backend(packets: list[str], section: dict = SECTION) -> tuple[VLLMBackend, ScriptedLLMServer]:
    server = ScriptedLLMServer(packets)
    return VLLMBackend(server, section), server


async def collect(pieces) -> list:
    return [piece async for piece in pieces]


def test_the_request_is_an_openai_chat_request_streamed_with_usage() -> None:
    vllm, _ = backend(GLACIER)
    params = SamplingParams(max_tokens=64, temperature=0.7, top_p=0.9, seed=7, stop=("###",))
    assert vllm.request(QUESTION, params) == {
        "model": "safeserve-smollm2",
        "messages": QUESTION,
        "max_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
        "stop": ["###"],
    }


def test_tools_are_sent_only_to_an_engine_that_parses_tool_calls() -> None:
    tools = ({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},)
    params = SamplingParams(max_tokens=8, tools=tools, tool_choice="auto")
    plain, _ = backend(GLACIER)
    assert not plain.tool_use and "tools" not in plain.request(QUESTION, params)
    parsing = {**SECTION, "engine_kwargs": {"enable_auto_tool_choice": True, "tool_call_parser": "hermes"}}
    calling, _ = backend(GLACIER, parsing)
    body = calling.request(QUESTION, params)
    assert calling.tool_use and body["tools"] == list(tools) and body["tool_choice"] == "auto"


def test_a_stream_gives_the_text_as_it_comes_then_the_finish_reason() -> None:
    vllm, server = backend(GLACIER)
    pieces = asyncio.run(collect(vllm.stream(QUESTION, SamplingParams(max_tokens=5))))
    assert pieces == ["A glacier", " is", " slow ice.", StreamEnd("length")]
    assert not server.calls[0].cancelled  # it ran to [DONE]: nothing to cancel


def test_a_whole_answer_is_the_stream_read_to_its_end_with_the_servers_usage() -> None:
    vllm, _ = backend(GLACIER)
    completion = asyncio.run(vllm.generate(QUESTION, SamplingParams(max_tokens=5)))
    assert (completion.text, completion.finish_reason) == ("A glacier is slow ice.", "length")
    assert (completion.prompt_tokens, completion.completion_tokens) == (31, 5)


def test_tool_calls_are_assembled_from_their_fragments() -> None:
    vllm, _ = backend(WEATHER_CALL)
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')
    completion = asyncio.run(vllm.generate(QUESTION, SamplingParams(max_tokens=16)))
    assert (completion.text, completion.tool_calls, completion.finish_reason) == ("", (call,), "tool_calls")
    # Streamed, the calls come after the text and the gateway announces them: the end says only "stop".
    assert asyncio.run(collect(vllm.stream(QUESTION, SamplingParams(max_tokens=16)))) == [call, StreamEnd("stop")]


@pytest.mark.parametrize(
    ("packets", "message"),
    [
        ([ERROR, DONE], "vLLM answered 400: max_tokens is too large"),
        (GLACIER[:1] + [ERROR, DONE], "vLLM answered 400"),
        (["data: {not json\n\n"], "not a chat completion chunk"),
        ([chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}), DONE], "without an id or a name"),
    ],
)
def test_an_error_or_a_broken_stream_fails_the_request(packets: list[str], message: str) -> None:
    vllm, _ = backend(packets)
    with pytest.raises(LLMError, match=message):
        asyncio.run(collect(vllm.stream(QUESTION, SamplingParams(max_tokens=5))))


def test_a_stream_left_early_cancels_the_generation() -> None:
    server = ScriptedLLMServer(GLACIER[:2], stall=True)
    vllm = VLLMBackend(server, SECTION)

    async def leave_after_the_first_piece() -> None:
        pieces = vllm.stream(QUESTION, SamplingParams(max_tokens=5))
        assert await anext(pieces) == "A glacier"
        await pieces.aclose()

    asyncio.run(leave_after_the_first_piece())
    assert server.calls[0].cancelled


def test_one_packet_with_several_events_is_read_whole() -> None:
    chat = ChatStream()
    assert chat.feed(GLACIER[0]) == ["A glacier", " is"]
    assert chat.feed(GLACIER[2] + DONE) == [] and chat.done and chat.usage == USAGE and chat.reason == "length"


def test_the_generator_steers_and_limits_what_it_sends_to_the_llm_server() -> None:
    server = ScriptedLLMServer(GLACIER)
    generator = Generator(llm=server, llm_section=SECTION)
    generator.reconfigure({"backend": "vllm", "max_new_tokens": 16, "stop": ["###"]})
    conversation = [{"role": "system", "content": "Answer in French."}, *QUESTION]
    pieces = asyncio.run(collect(generator.stream(conversation, SamplingParams(max_tokens=500))))
    assert "".join(p for p in pieces if isinstance(p, str)) == "A glacier is slow ice." and pieces[-1] == StreamEnd(
        "length"
    )
    sent = server.requests[0]
    assert sent["messages"] == generator.prompt_messages(conversation)
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a helpful, honest and harmless")
    assert system["content"].endswith(f"{OPERATOR_HEADER}\nAnswer in French.")  # demoted below the preamble
    assert (sent["max_tokens"], sent["stop"]) == (16, ["###"])


def test_backend_vllm_without_the_llm_server_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="set `llm`"):
        Generator().reconfigure({"backend": "vllm"})
