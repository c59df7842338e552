"""A real `Gateway` on the test redis-server, with scripted deployment handles in place of Ray's.

A scripted method records every call and answers it with a plain function: an `async def` answers as a
`DeploymentResponse` does (awaited once, cancellable); any other function's result is returned as it is (a
stream, for `options(stream=True)`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Generator
from types import SimpleNamespace
from typing import Any, TypeVar

import redis.asyncio as aioredis
from pydantic import SecretStr

from deployments.audit import AUDIT_STREAM, INCIDENT_STREAM
from deployments.review_store import ReviewItem, ReviewRequest
from serve_app.config import IngressConfig, Settings
from serve_app.deps import RequestContext
from serve_app.gateway import Gateway, Handles
from serve_app.schemas.admin import ApiKeyInfo
from serve_app.stores import Stores
from serve_app.timing import StageTimer

T = TypeVar("T")
ADMIN_KEY = "ss-admin-scripted-test"


class Reply:
    """What a scripted `.remote(...)` returns."""

    def __init__(self, answer: Awaitable[Any]) -> None:
        self.answer = answer
        self.cancelled = False

    def __await__(self) -> Generator[Any, None, Any]:
        return self.answer.__await__()

    def cancel(self) -> None:
        self.cancelled = True


class Method:
    def __init__(self, answer: Callable[..., Any]) -> None:
        self.answer = answer
        self.calls: list[tuple] = []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)
        answered = self.answer(*args)
        return Reply(answered) if inspect.isawaitable(answered) else answered


async def current_first_stage(version: str | None) -> None:
    """The deployment's answer to a first stage's refresh when the ingress has no copy to replace: none."""
    return None


class ScriptedReviewQueue:
    """The ReviewQueue's `enqueue`: keeps each item it is given and answers with the item as queued."""

    def __init__(self) -> None:
        self.items: list[ReviewRequest] = []

    async def enqueue(self, request: ReviewRequest) -> ReviewItem:
        self.items.append(request)
        now = time.time()
        return ReviewItem(**request.model_dump(), id=f"rev-{len(self.items)}", created_at=now, sla_deadline=now + 60)


class ScriptedHandle:
    """A deployment handle whose methods are scripted; `options(...)` changes nothing."""

    def __init__(self, **methods: Callable[..., Any]) -> None:
        methods = {"first_stage": current_first_stage, **methods}
        self.methods = {name: Method(answer) for name, answer in methods.items()}

    def __getattr__(self, name: str) -> Method:
        try:
            return self.__dict__["methods"][name]
        except KeyError:
            raise AttributeError(name) from None

    def options(self, **_options: Any) -> ScriptedHandle:
        return self


def scripted_gateway(
    client: aioredis.Redis,
    config: IngressConfig,
    intent: ScriptedHandle | None = None,
    generator: ScriptedHandle | None = None,
    moderator: ScriptedHandle | None = None,
    reviews: ScriptedHandle | None = None,
) -> Gateway:
    """A gateway whose stores are on `client`; a deployment not given has no methods but `first_stage`."""
    settings = Settings(admin_key=SecretStr(ADMIN_KEY))
    handles = Handles(*(handle or ScriptedHandle() for handle in (intent, generator, moderator, reviews)))
    return Gateway(handles, settings, config, Stores.on(client, settings.hash_secret()))


def on_redis(redis_server, scenario: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run `scenario` with a client of the test redis-server, in an event loop of its own."""

    async def main() -> T:
        client = aioredis.from_url(redis_server.url, decode_responses=True)
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def user_context(tier: str = "standard", route: str = "/v1/chat/completions") -> RequestContext:
    """A request of a new user's key: nothing in Redis is theirs yet."""
    user = uuid.uuid4().hex[:8]
    key = ApiKeyInfo(id=f"key-{user}", user_id=f"user-{user}", tier=tier, role="user", created_at=time.time())
    return RequestContext(request_id=f"req-{user}", route=route, key=key, timer=StageTimer(), state=SimpleNamespace())


async def incidents_of(client: aioredis.Redis, user_id: str) -> list[dict]:
    entries = await client.xrange(INCIDENT_STREAM)
    records = [json.loads(fields["record"]) for _id, fields in entries]
    return [record for record in records if record["user_id"] == user_id]


async def penalties_of(client: aioredis.Redis, user_id: str) -> list[str]:
    """The reputation events charged to the user, from the audit stream."""
    entries = await client.xrange(AUDIT_STREAM)
    return [
        fields["action"].removeprefix("reputation.")
        for _id, fields in entries
        if fields["target"] == f"user:{user_id}" and fields["action"].startswith("reputation.")
    ]
