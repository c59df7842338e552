"""An answer delivered whole (serve_app/chat/complete.py `complete`), driven in process through a real gateway on
the test Redis with a scripted generator and moderator: what the client gets, what is recorded, and the tokens
the limiter is left holding."""

from __future__ import annotations

import re

import pytest
import redis.asyncio as aioredis

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Redaction, Verdict
from deployments.generation import Completion, SamplingParams
from serve_app.access import admit
from serve_app.chat.complete import complete
from serve_app.chat.records import held_message
from serve_app.chat.turn import ChatTurn
from serve_app.config import IngressConfig
from serve_app.errors import ServiceUnavailable
from serve_app.limits import KEY
from serve_app.schemas.chat import ChatCompletion, ChatCompletionRequest
from tests.serve_app.scripted import (
    ScriptedHandle,
    ScriptedReviewQueue,
    incidents_of,
    on_redis,
    penalties_of,
    scripted_gateway,
    user_context,
)

QUESTION = "What is the capital of France?"
MAX_TOKENS = 64
CONFIG = IngressConfig(
    tiers={"standard": {"max_tokens": MAX_TOKENS, "limits": {"tokens_per_day": 10_000}}},
    review_modes={"self_harm": "hold"},
)
EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")
UNSAFE = "zebra"


async def moderate(text: str, question: str, strict: bool) -> Verdict:
    """Blocks a text with UNSAFE in it, redacts e-mail addresses, allows the rest."""
    if UNSAFE in text:
        return Verdict(
            layer="moderator", action=Action.BLOCK, category=Category.VIOLENCE, score=0.99,
            flagged=frozenset({Category.VIOLENCE}),
        )  # fmt: skip
    spans = tuple(Redaction("email", Category.PRIVACY, m.start(), m.end(), "[email]") for m in EMAIL.finditer(text))
    return Verdict(layer="moderator", reasons=("redacted:email",) if spans else (), redactions=spans)


class World:
    """A real gateway on the test Redis whose generator answers `answer` (or fails, for None)."""

    def __init__(self, client: aioredis.Redis, answer: Completion | None) -> None:
        self.queue = ScriptedReviewQueue()

        async def generate(messages, params):
            if answer is None:
                raise ConnectionError("generator replica died")
            return answer

        self.generator = ScriptedHandle(generate=generate)
        self.gateway = scripted_gateway(
            client,
            CONFIG,
            generator=self.generator,
            moderator=ScriptedHandle(moderate=moderate),
            reviews=ScriptedHandle(enqueue=self.queue.enqueue),
        )
        self.ctx = user_context()

    async def complete(self, input_verdict: Verdict | None = None) -> ChatCompletion:
        access = await admit(self.gateway, self.ctx, [QUESTION], max_tokens=MAX_TOKENS)
        assert await self.tokens_held() == access.prompt_tokens + MAX_TOKENS  # reserved at admission
        request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": QUESTION}])
        params = SamplingParams(max_tokens=MAX_TOKENS)
        return await complete(ChatTurn(self.gateway, self.ctx, access, request, params, QUESTION, input_verdict))

    async def tokens_held(self) -> int:
        """The key's daily token counter: what it reserved and has not been given back."""
        (name,) = [name async for name in self.gateway.redis.scan_iter(match=KEY.format(self.ctx.key.id, "day:*"))]
        return int(await self.gateway.redis.get(name))

    async def incidents(self) -> list[tuple[str, str, str | None, list[str]]]:
        records = await incidents_of(self.gateway.redis, self.ctx.key.user_id)
        return [(r["action"], r["layer"], r["category"], r["reasons"]) for r in records]


def answer(text: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> Completion:
    return Completion(text, prompt_tokens, completion_tokens, finish_reason="stop")


def test_a_benign_answer_is_delivered_with_its_usage_and_the_unused_tokens_are_given_back(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, answer("Paris."))
        completion = await world.complete()
        (choice,) = completion.choices
        assert (choice.message.content, choice.finish_reason, choice.message.tool_calls) == ("Paris.", "stop", None)
        assert completion.usage.model_dump() == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        assert await world.tokens_held() == 18
        assert world.ctx.state.decision == "allow" and world.ctx.state.tokens == {"prompt": 11, "completion": 7}
        assert await world.incidents() == [] and world.queue.items == []
        assert len(world.generator.generate.calls) == 1

    on_redis(redis_server, scenario)


def test_tokens_the_model_server_did_not_report_are_counted_by_the_ingress(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, answer("Paris is the capital of France.", prompt_tokens=0, completion_tokens=0))
        completion = await world.complete()
        spent = world.gateway.tokens.length("Paris is the capital of France.")
        prompt = world.gateway.tokens.count([QUESTION])
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (prompt, spent)
        assert await world.tokens_held() == prompt + spent

    on_redis(redis_server, scenario)


def test_a_blocked_answer_is_refused_as_a_content_filter_and_recorded(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, answer(f"Here is the {UNSAFE} you asked for."))
        completion = await world.complete()
        (choice,) = completion.choices
        assert choice.message.content == CONFIG.refusal_message and choice.finish_reason == "content_filter"
        assert completion.usage.total_tokens == 18 and await world.tokens_held() == 18  # spent, refused or not
        assert world.ctx.state.decision == "content_filter"
        assert await world.incidents() == [("block", "moderator", Category.VIOLENCE, [])]
        assert await penalties_of(client, world.ctx.key.user_id) == ["output_block"]

    on_redis(redis_server, scenario)


def test_a_redaction_is_applied_to_the_answer_delivered(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, answer("Write to ada@example.org today."))
        (choice,) = (await world.complete()).choices
        assert (choice.message.content, choice.finish_reason) == ("Write to [email] today.", "stop")
        assert world.ctx.state.decision == "redacted"
        assert await world.incidents() == [("allow", "moderator", None, ["redacted:email"])]

    on_redis(redis_server, scenario)


def test_an_input_in_a_hold_category_withholds_the_answer_for_review(redis_server) -> None:
    held = Verdict(
        layer="intent_classifier", action=Action.REVIEW, category=Category.SELF_HARM, score=0.6,
        flagged=frozenset({Category.SELF_HARM}),
    )  # fmt: skip

    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, answer("Write to ada@example.org today."))
        completion = await world.complete(input_verdict=held)
        (choice,) = completion.choices
        (item,) = world.queue.items
        assert completion.safeserve_review_id == "rev-1" and choice.message.content == held_message("rev-1")
        assert choice.finish_reason == "content_filter"
        assert (item.mode, item.category, item.held_output) == ("hold", Category.SELF_HARM, "Write to [email] today.")
        assert world.ctx.state.decision == "held"

    on_redis(redis_server, scenario)


def test_a_failed_generator_gives_every_reserved_token_back(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        world = World(client, None)
        with pytest.raises(ServiceUnavailable) as refused:
            await world.complete()
        assert refused.value.code == "generator_unavailable"
        assert await world.tokens_held() == 0

    on_redis(redis_server, scenario)
