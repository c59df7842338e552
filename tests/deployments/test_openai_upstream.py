"""The openai_upstream backend against a real second server (harness/scripted_upstream.py) that stalls: the
request fails within `timeout_s` with an error that says why, before or during a stream, concurrent requests are
relayed at once, and a stream cancelled while it waits is closed."""

from __future__ import annotations

import asyncio
import time

import pytest

from deployments.config import GeneratorConfig
from deployments.generation import SamplingParams, StreamEnd
from deployments.generator import Generator
from deployments.openai_upstream_backend import OpenAIUpstreamBackend, UpstreamError
from harness.scripted_upstream import CLEAN, ScriptedUpstream

STALLING = [{"role": "user", "content": "Describe a glacier."}]
PARAMS = SamplingParams(max_tokens=16)
TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def upstream() -> dict:
    server = ScriptedUpstream(stall_s=3.0).start()
    yield {"url": server.url, "model": "scripted-upstream", "timeout_s": TIMEOUT_S, "max_retries": 2}
    server.stop()


@pytest.fixture
def backend(upstream: dict) -> OpenAIUpstreamBackend:
    """One per test: an async client's connections belong to the event loop that opened them."""
    return OpenAIUpstreamBackend(GeneratorConfig(backend="openai_upstream", upstream=upstream))


def test_a_stalling_upstream_fails_within_timeout_s_and_is_not_retried(backend) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"sent nothing for 0\.5 s"):
        asyncio.run(backend.generate(STALLING, PARAMS))
    assert time.monotonic() - started < 2 * TIMEOUT_S  # one wait, not one per retry


def test_a_stream_that_stalls_after_its_first_chunk_fails_with_the_same_error(backend) -> None:
    async def read() -> None:
        pieces = backend.stream(STALLING, PARAMS)
        assert await anext(pieces) == CLEAN[0]
        started = time.monotonic()
        with pytest.raises(UpstreamError, match=r"sent nothing for 0\.5 s"):
            await anext(pieces)
        assert time.monotonic() - started < 2 * TIMEOUT_S

    asyncio.run(read())


async def collect(pieces) -> list:
    return [piece async for piece in pieces]


def test_an_upstream_that_answers_in_time_is_unaffected(backend) -> None:
    meadow = [{"role": "user", "content": "Describe a meadow."}]
    answer = asyncio.run(backend.generate(meadow, SamplingParams(max_tokens=40)))
    assert answer.text == " ".join(CLEAN)


def test_a_stream_ends_with_the_upstreams_finish_reason(backend) -> None:
    meadow = [{"role": "user", "content": "Describe a meadow."}]
    whole = asyncio.run(collect(backend.stream(meadow, SamplingParams(max_tokens=40))))
    assert "".join(p for p in whole if isinstance(p, str)) == " ".join(CLEAN)
    assert whole[-1] == StreamEnd("stop")
    cut = asyncio.run(collect(backend.stream(meadow, SamplingParams(max_tokens=3))))  # the script is longer
    assert "".join(p for p in cut if isinstance(p, str)) == " ".join(CLEAN[:3])
    assert cut[-1] == StreamEnd("length")


def test_concurrent_requests_are_relayed_at_once_not_one_after_another(upstream: dict) -> None:
    """The Generator relays each request as it comes: eight answers that each take 0.3 s at the upstream
    arrive together, not 2.4 s apart."""
    generator = Generator()
    generator.reconfigure({"backend": "openai_upstream", "upstream": {**upstream, "timeout_s": 5}})
    slow = [{"role": "user", "content": "Describe a glacier."}]  # the scripted upstream stalls on it

    async def eight() -> list:
        return await asyncio.gather(*(generator.generate(slow, PARAMS) for _ in range(8)))

    started = time.monotonic()
    answers = asyncio.run(eight())
    assert [a.text for a in answers] == [" ".join(CLEAN[:16])] * 8
    assert time.monotonic() - started < 3.0 * 2  # one stall (3 s) with slack; in turn it would be 24 s


def test_a_stream_cancelled_while_a_read_waits_is_closed_and_the_upstream_stays_usable(upstream: dict) -> None:
    """The gateway cancels a stream when it cuts an unsafe answer or the client leaves, often while a read waits
    on the upstream. The upstream's stream must then be closed, and later requests must still be answered (a
    stream left to the garbage collector once hung every later request in the connection pool)."""
    generator = Generator()
    generator.reconfigure({"backend": "openai_upstream", "upstream": upstream})

    async def cancel_mid_read() -> None:
        first_piece = asyncio.Event()

        async def consume() -> None:
            async for _ in generator.stream(STALLING, PARAMS):
                first_piece.set()

        task = asyncio.create_task(consume())
        await first_piece.wait()
        await asyncio.sleep(0.1)  # the next read now waits on the stalled upstream
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        meadow = [{"role": "user", "content": "Describe a meadow."}]
        answer = await asyncio.wait_for(generator.generate(meadow, SamplingParams(max_tokens=40)), 5)
        assert answer.text == " ".join(CLEAN)

    asyncio.run(cancel_mid_read())
