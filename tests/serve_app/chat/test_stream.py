"""The decision on a moderated stream (serve_app/chat/stream.py `stream_completion`), driven in process through a
real gateway on the test Redis with scripted deployments: a check that sends a window to review is recorded
(incident, review item, reputation) even when the final check does not repeat it, or when the client leaves
before the end, once."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict
from deployments.generation import SamplingParams, StreamEnd
from serve_app.access import admit
from serve_app.chat.stream import stream_completion
from serve_app.chat.turn import ChatTurn
from serve_app.config import IngressConfig
from serve_app.schemas.chat import ChatCompletionRequest
from tests.serve_app.scripted import (
    ScriptedHandle,
    ScriptedReviewQueue,
    incidents_of,
    on_redis,
    penalties_of,
    scripted_gateway,
    user_context,
)

FLAGGED = "rude"
# The answer's words; a check of the first few sees the flagged word in a short text and sends it to review, a
# check of the longer text scores it below the band (a toxicity score is of the whole text).
WORDS = ["Sure,", "here", "is", "a", FLAGGED, "reply", *(f"word{i}" for i in range(1, 15))]
DILUTED_AFTER = 10  # words: a longer text with the flagged word in it is allowed


def split(piece: str) -> list[str]:
    return re.findall(r"\s*\S+", piece)


def moderator_verdict(text: str, category: Category = Category.HARASSMENT) -> Verdict:
    if FLAGGED in text and len(split(text)) < DILUTED_AFTER:
        return Verdict(layer="moderator", action=Action.REVIEW, category=category, score=0.7, flagged={category})
    return Verdict(layer="moderator")


class Generated:
    """A generator stream: the pieces, then either its end or a wait that never ends (an upstream still
    generating when the client leaves)."""

    def __init__(self, pieces: list[str], stall: bool) -> None:
        self.pieces, self.stall = pieces, stall
        self.cancelled = False

    async def __aiter__(self):
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield piece
        if self.stall:
            await asyncio.Event().wait()
        yield StreamEnd("stop")

    def cancel(self) -> None:
        self.cancelled = True


CONFIG = IngressConfig(
    stream_moderation={"holdback_tokens": 2, "check_every_tokens": 2}, review_modes={"self_harm": "hold"}
)
QUESTION = "Reply to my neighbour."


class World:
    """A real gateway on the test Redis whose generator streams `pieces` and whose moderator scores as
    `moderator_verdict`; every check goes to it (no first stage is copied into the gateway)."""

    def __init__(
        self, client: aioredis.Redis, pieces: list[str], stall: bool = False, category: Category = Category.HARASSMENT
    ) -> None:
        self.stream = Generated(pieces, stall)
        self.queue = ScriptedReviewQueue()

        async def moderate(text: str, question: str, strict: bool) -> Verdict:
            await asyncio.sleep(0)
            return moderator_verdict(text, category)

        self.gateway = scripted_gateway(
            client,
            CONFIG,
            generator=ScriptedHandle(stream=lambda messages, params: self.stream),
            moderator=ScriptedHandle(moderate=moderate),
            reviews=ScriptedHandle(enqueue=self.queue.enqueue),
        )
        self.ctx = user_context()

    async def events(self) -> AsyncIterator[str]:
        access = await admit(self.gateway, self.ctx, [QUESTION], max_tokens=64)
        request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": QUESTION}])
        turn = ChatTurn(self.gateway, self.ctx, access, request, SamplingParams(max_tokens=64), QUESTION)
        return stream_completion(turn)

    async def incidents(self) -> list[tuple[str, str, str]]:
        records = await incidents_of(self.gateway.redis, self.ctx.key.user_id)
        return [(record["action"], record["layer"], record["category"]) for record in records]

    async def penalties(self) -> list[str]:
        return await penalties_of(self.gateway.redis, self.ctx.key.user_id)


def content(event: str) -> str:
    payload = event.removeprefix("data: ").strip()
    if payload == "[DONE]":
        return ""
    return json.loads(payload)["choices"][0]["delta"].get("content") or ""


def pieces_of(words: list[str]) -> list[str]:
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


async def read_until_flagged(events) -> str:
    received = ""
    while FLAGGED not in received:
        received += content(await anext(events))
    return received


async def read_until_quiet(events) -> str:
    """What a client receives until the stream goes quiet (the generator stalls); then it leaves: the request's
    task is cancelled where the stream waits."""
    received = ""
    while True:
        waiting = asyncio.ensure_future(anext(events))
        done, _ = await asyncio.wait([waiting], timeout=0.05)
        if not done:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return received
        received += content(waiting.result())


def test_a_review_on_a_window_is_recorded_when_the_final_check_does_not_repeat_it(redis_server) -> None:
    """It was dropped: the final check of the whole answer allowed it, and only that verdict was recorded."""
    assert moderator_verdict(" ".join(WORDS)).action is Action.ALLOW

    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, pieces_of(WORDS))
        events = [event async for event in await world.events()]
        assert "".join(map(content, events)) == " ".join(WORDS)  # an async review delivers the answer
        assert await world.incidents() == [("review", "moderator", Category.HARASSMENT)]
        assert [(item.category, item.output_excerpt is not None) for item in world.queue.items] == [
            (Category.HARASSMENT, True)
        ]
        assert await world.penalties() == ["review"]

    on_redis(redis_server, scenario)


@pytest.mark.parametrize("how", ["closed", "cancelled"])
def test_a_client_that_leaves_after_flagged_text_leaves_the_review_recorded_once(redis_server, how: str) -> None:
    """`closed`: the response is closed while the stream waits at a yield (its generator is closed);
    `cancelled`: the request's task is cancelled while the stream waits for the generator."""

    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, pieces_of(WORDS[:8]), stall=True)
        events = await world.events()
        received = await read_until_flagged(events) if how == "closed" else await read_until_quiet(events)
        await events.aclose()
        assert FLAGGED in received and world.stream.cancelled
        assert await world.incidents() == [("review", "moderator", Category.HARASSMENT)]
        assert [item.mode for item in world.queue.items] == ["async"]
        assert FLAGGED in world.queue.items[0].output_excerpt
        assert await world.penalties() == ["review"]

    on_redis(redis_server, scenario)


def test_a_hold_verdict_whose_client_left_is_queued_for_review(redis_server) -> None:
    """A `hold` category stops the release; the client that would fetch the answer once approved is gone, so the
    item is an async one with what was generated."""

    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, pieces_of(WORDS[:8]), stall=True, category=Category.SELF_HARM)
        events = await world.events()
        received = await read_until_quiet(events)
        await events.aclose()
        assert FLAGGED not in received
        assert await world.incidents() == [("review", "moderator", Category.SELF_HARM)]
        assert [(item.category, item.mode) for item in world.queue.items] == [(Category.SELF_HARM, "async")]

    on_redis(redis_server, scenario)
