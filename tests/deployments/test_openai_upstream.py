"""The openai_upstream backend against a real second server (bench/scripted_upstream.py) that stalls: the
request fails within `timeout_s` with an error that says why, before or during a stream, and a stream cancelled
while it waits is closed."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.scripted_upstream import CLEAN, ScriptedUpstream
from deployments.config import GeneratorConfig
from deployments.generation import SamplingParams, StreamEnd
from deployments.generator import Generator
from deployments.openai_upstream_backend import OpenAIUpstreamBackend, UpstreamError

STALLING = [{"role": "user", "content": "Describe a glacier."}]
PARAMS = SamplingParams(max_tokens=16)
TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def upstream() -> dict:
    server = ScriptedUpstream(stall_s=3.0).start()
    yield {"url": server.url, "model": "scripted-upstream", "timeout_s": TIMEOUT_S, "max_retries": 2}
    server.stop()


@pytest.fixture(scope="module")
def backend(upstream: dict) -> OpenAIUpstreamBackend:
    return OpenAIUpstreamBackend(GeneratorConfig(backend="openai_upstream", upstream=upstream))


def test_a_stalling_upstream_fails_within_timeout_s_and_is_not_retried(backend) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"sent nothing for 0\.5 s"):
        backend.generate(STALLING, PARAMS)
    assert time.monotonic() - started < 2 * TIMEOUT_S  # one wait, not one per retry


def test_a_stream_that_stalls_after_its_first_chunk_fails_with_the_same_error(backend) -> None:
    pieces = backend.stream(STALLING, PARAMS)
    assert next(pieces) == CLEAN[0]
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"sent nothing for 0\.5 s"):
        next(pieces)
    assert time.monotonic() - started < 2 * TIMEOUT_S


def test_an_upstream_that_answers_in_time_is_unaffected(backend) -> None:
    answer = backend.generate([{"role": "user", "content": "Describe a meadow."}], SamplingParams(max_tokens=40))
    assert answer.text == " ".join(CLEAN)


def test_a_stream_ends_with_the_upstreams_finish_reason(backend) -> None:
    meadow = [{"role": "user", "content": "Describe a meadow."}]
    whole = list(backend.stream(meadow, SamplingParams(max_tokens=40)))
    assert "".join(p for p in whole if isinstance(p, str)) == " ".join(CLEAN)
    assert whole[-1] == StreamEnd("stop")
    cut = list(backend.stream(meadow, SamplingParams(max_tokens=3)))  # the script is longer than 3 words
    assert "".join(p for p in cut if isinstance(p, str)) == " ".join(CLEAN[:3])
    assert cut[-1] == StreamEnd("length")


def test_a_stream_cancelled_while_a_read_waits_is_closed_once_the_read_returns(upstream: dict) -> None:
    """The gateway cancels a stream when it cuts an unsafe answer or the client leaves, often while a read waits
    in its thread. The backend's stream must then be closed by the Generator, not left to the garbage collector:
    collected inside the HTTP client's connection pool, its close waited forever on the pool's lock, and every
    later request to the upstream hung."""
    generator = Generator()
    generator.reconfigure({"backend": "openai_upstream", "upstream": upstream})

    async def cancel_mid_read() -> None:
        first_piece = asyncio.Event()

        async def consume() -> None:
            async for _ in generator.stream(STALLING, PARAMS):
                first_piece.set()

        task = asyncio.create_task(consume())
        await first_piece.wait()
        await asyncio.sleep(0.1)  # the next read now waits in its thread on the stalled upstream
        task.cancel()
        # the closing does not fail ("generator already executing"): the cancellation is what comes out
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_read())
