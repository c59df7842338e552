"""The decision on a moderated stream (serve_app/chat/stream.py `stream_completion`), driven in process against
stand-ins for the deployments and Redis: a check that sends a window to review is recorded (incident, review
item, reputation) even when the final check does not repeat it, or when the client leaves before the end, once."""

from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace

import pytest

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict
from deployments.generation import SamplingParams, StreamEnd
from serve_app.chat.stream import stream_completion
from serve_app.config import IngressConfig
from serve_app.schemas.chat import ChatCompletionRequest
from serve_app.timing import StageTimer

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


class StandIns:
    """The gateway's deployments and stores, recording what the stream asked of them."""

    def __init__(self, pieces: list[str], stall: bool = False, category: Category = Category.HARASSMENT) -> None:
        self.incidents: list[dict] = []
        self.reviews: list = []
        self.penalties: list[str] = []
        self.stream = Generated(pieces, stall)
        config = IngressConfig(
            stream_moderation={"holdback_tokens": 2, "check_every_tokens": 2}, review_modes={"self_harm": "hold"}
        )

        async def moderate(text: str, question: str, strict: bool) -> Verdict:
            await asyncio.sleep(0)
            return moderator_verdict(text, category)

        async def enqueue(item):
            self.reviews.append(item)
            return SimpleNamespace(id=f"rev-{len(self.reviews)}")

        async def record(record: dict, config) -> None:
            self.incidents.append(record)

        async def penalize(user_id, config, event, category, actor, reason):
            self.penalties.append(event)
            return SimpleNamespace(newly_suspended=False)

        async def reward_clean(user_id, config) -> None:
            pass

        async def call(component, response, timeout_s, expected=()):
            return await response

        self.gateway = SimpleNamespace(
            config=config,
            tokens=SimpleNamespace(split=split, length=lambda text: len(split(text))),
            handles=SimpleNamespace(
                generator=SimpleNamespace(
                    options=lambda stream: SimpleNamespace(stream=SimpleNamespace(remote=lambda m, p: self.stream))
                ),
                moderator=SimpleNamespace(moderate=SimpleNamespace(remote=moderate)),
                reviews=SimpleNamespace(enqueue=SimpleNamespace(remote=enqueue)),
            ),
            # No copy of the Moderator's first stage yet: every check goes to the moderator above.
            first_stage=SimpleNamespace(ensure_refreshing=lambda: None, moderator=None),
            call=call,
            safety_call=lambda layer, response, timeout_s, verdicts=None: call(layer, response, timeout_s),
            incidents=SimpleNamespace(record=record, log=lambda record: None),
            reputation=SimpleNamespace(penalize=penalize, reward_clean=reward_clean),
        )

    def events(self):
        ctx = SimpleNamespace(
            request_id="req-1",
            key=SimpleNamespace(id="key-1", user_id="user-1", role="user", tier="standard"),
            route="/v1/chat/completions",
            timer=StageTimer(),
            state=SimpleNamespace(),
        )
        access = SimpleNamespace(
            tier=SimpleNamespace(review_sample_rate=0.0), prompt_tokens=4, strict=False, admission=None
        )
        request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "Reply to my neighbour."}])
        return stream_completion(
            self.gateway, ctx, access, request, SamplingParams(max_tokens=64), "Reply to my neighbour."
        )


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


def test_a_review_on_a_window_is_recorded_when_the_final_check_does_not_repeat_it() -> None:
    """It was dropped: the final check of the whole answer allowed it, and only that verdict was recorded."""
    world = StandIns(pieces_of(WORDS))
    assert moderator_verdict(" ".join(WORDS)).action is Action.ALLOW

    async def read() -> list[str]:
        return [event async for event in world.events()]

    events = asyncio.run(read())
    assert "".join(map(content, events)) == " ".join(WORDS)  # an async review delivers the answer
    assert [(r["action"], r["layer"], r["category"]) for r in world.incidents] == [
        ("review", "moderator", Category.HARASSMENT)
    ]
    assert [(item.category, item.output_excerpt is not None) for item in world.reviews] == [(Category.HARASSMENT, True)]
    assert world.penalties == ["review"]


@pytest.mark.parametrize("how", ["closed", "cancelled"])
def test_a_client_that_leaves_after_flagged_text_leaves_the_review_recorded_once(how: str) -> None:
    """`closed`: the response is closed while the stream waits at a yield (its generator is closed);
    `cancelled`: the request's task is cancelled while the stream waits for the generator."""
    world = StandIns(pieces_of(WORDS[:8]), stall=True)

    async def leave() -> str:
        events = world.events()
        received = await read_until_flagged(events) if how == "closed" else await read_until_quiet(events)
        await events.aclose()
        return received

    received = asyncio.run(leave())
    assert FLAGGED in received and world.stream.cancelled
    assert [(r["action"], r["category"]) for r in world.incidents] == [("review", Category.HARASSMENT)]
    assert len(world.reviews) == 1 and world.reviews[0].mode == "async"
    assert FLAGGED in world.reviews[0].output_excerpt
    assert world.penalties == ["review"]


def test_a_hold_verdict_whose_client_left_is_queued_for_review() -> None:
    """A `hold` category stops the release; the client that would fetch the answer once approved is gone, so the
    item is an async one with what was generated."""
    world = StandIns(pieces_of(WORDS[:8]), stall=True, category=Category.SELF_HARM)

    async def leave() -> str:
        events = world.events()
        received = await read_until_quiet(events)
        await events.aclose()
        return received

    received = asyncio.run(leave())
    assert FLAGGED not in received
    assert [(r["action"], r["category"]) for r in world.incidents] == [("review", Category.SELF_HARM)]
    assert [(item.category, item.mode) for item in world.reviews] == [(Category.SELF_HARM, "async")]
