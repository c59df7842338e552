"""The Generator's relay joins text pieces that arrive faster than it can send them, in order, and keeps tool
calls, the end and faults where they were in the stream."""

from __future__ import annotations

import asyncio

import pytest

from deployments.generation import StreamEnd, ToolCall
from deployments.generator import coalesced

CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')


async def source(items, fail: Exception | None = None, closed: list | None = None):
    try:
        for item in items:
            yield item
            await asyncio.sleep(0)
        if fail is not None:
            raise fail
    finally:
        if closed is not None:
            closed.append(True)


async def slowly(pieces) -> list:
    """Read as a busy hop would: the next piece is asked for only after a pause."""
    out = []
    async for piece in pieces:
        out.append(piece)
        await asyncio.sleep(0.01)
    return out


def test_pieces_that_queue_up_are_sent_as_one_and_nothing_moves_out_of_order() -> None:
    items = ["Hello", " there", ",", " friend", CALL, " after", StreamEnd("stop")]
    out = asyncio.run(slowly(coalesced(source(items))))
    assert "".join(p for p in out if isinstance(p, str)) == "Hello there, friend after"
    assert len(out) < len(items)  # joined
    assert out.index(CALL) < out.index(" after") and out[-1] == StreamEnd("stop")


def test_a_fault_is_raised_after_the_text_that_came_before_it() -> None:
    async def read() -> list:
        out = []
        with pytest.raises(RuntimeError, match="upstream went away"):
            async for piece in coalesced(source(["one", " two"], fail=RuntimeError("upstream went away"))):
                out.append(piece)
        return out

    assert "".join(asyncio.run(read())) == "one two"


def test_closing_the_relay_closes_the_upstream_stream() -> None:
    closed: list = []

    async def first_then_close() -> str:
        relay = coalesced(source([f"w{i} " for i in range(100)], closed=closed))
        first = await anext(relay)
        await relay.aclose()
        return first

    assert asyncio.run(first_then_close()).startswith("w0")
    assert closed == [True]
