"""A real `Gateway` on the test redis-server, with scripted deployment handles in place of Ray's.

A scripted method records every call and answers it with a plain function: an `async def` answers as a
`DeploymentResponse` does (awaited once, cancellable); any other function's result is returned as it is (a
stream, for `options(stream=True)`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr

from serve_app.config import IngressConfig, Settings
from serve_app.gateway import Gateway, Handles
from serve_app.stores import Stores

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
