"""A request's tokens are settled once, whichever way it ends (serve_app/chat/turn.py), on real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis

from deployments.generation import SamplingParams
from serve_app.access import admit
from serve_app.chat.turn import ChatTurn
from serve_app.config import IngressConfig
from serve_app.limits import KEY
from serve_app.schemas.chat import ChatCompletionRequest
from tests.serve_app.scripted import on_redis, scripted_gateway, user_context

MAX_TOKENS = 64
CONFIG = IngressConfig(tiers={"standard": {"max_tokens": MAX_TOKENS, "limits": {"tokens_per_day": 10_000}}})


def test_only_the_first_settlement_gives_tokens_back(redis_server) -> None:
    async def scenario(client: aioredis.Redis) -> tuple[int, int, int]:
        gateway, ctx = scripted_gateway(client, CONFIG), user_context()
        access = await admit(gateway, ctx, ["Hello there."], max_tokens=MAX_TOKENS)
        body = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "Hello there."}])
        turn = ChatTurn(gateway, ctx, access, body, SamplingParams(max_tokens=MAX_TOKENS), "Hello there.")
        (day,) = [name async for name in client.scan_iter(match=KEY.format(ctx.key.id, "day:*"))]
        reserved = int(await client.get(day))
        await turn.settle(10)  # e.g. the stream's end
        await turn.settle(0)  # e.g. a fault handler after it: must not give back what was used
        return reserved, int(await client.get(day)), access.prompt_tokens

    reserved, held, prompt_tokens = on_redis(redis_server, scenario)
    assert reserved == prompt_tokens + MAX_TOKENS
    assert held == 10
