"""A safety layer that cannot answer follows its fail mode: closed refuses, open passes every text it was asked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from serve_app import gateway as gateway_module
from serve_app.config import IngressConfig
from serve_app.errors import ServiceUnavailable
from tests.serve_app.scripted import ScriptedHandle, scripted_gateway


async def replica_died(text: str, question: str, strict: bool) -> None:
    raise ConnectionError("replica died")


def moderate_with(redis_server, mode: str, verdicts: int | None = None):
    """The Moderator asked through a gateway whose moderator layer fails `mode`; returns the answer, or the
    error, and the reply the gateway was given."""

    async def ask():
        client = aioredis.from_url(redis_server.url, decode_responses=True)
        moderator = ScriptedHandle(moderate=replica_died)
        gateway = scripted_gateway(client, IngressConfig(fail_modes={"moderator": mode}), moderator=moderator)
        reply = gateway.handles.moderator.moderate.remote("text", "", False)
        try:
            return await gateway.safety_call("moderator", reply, 1.0, verdicts=verdicts), reply
        except ServiceUnavailable as exc:
            return exc, reply
        finally:
            await client.aclose()

    return asyncio.run(ask())


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    monkeypatch.setattr(gateway_module, "INFRA_ERRORS", SimpleNamespace(inc=lambda tags: found.append(tags)))
    return found


def test_a_failed_safety_layer_fails_closed_by_default(redis_server, counted: list[dict[str, str]]) -> None:
    refused, reply = moderate_with(redis_server, "fail_closed", verdicts=3)
    assert isinstance(refused, ServiceUnavailable) and refused.code == "moderator_unavailable"
    assert reply.cancelled
    assert counted == [
        {"component": "moderator", "outcome": "error"},
        {"component": "moderator", "outcome": "fail_closed"},
    ]


def test_failing_open_passes_one_verdict_per_text_asked(redis_server, counted: list[dict[str, str]]) -> None:
    many, _ = moderate_with(redis_server, "fail_open", verdicts=3)
    one, _ = moderate_with(redis_server, "fail_open")
    assert [v.reasons for v in many] == [("fail_open",)] * 3
    assert one.reasons == ("fail_open",) and one.action == "allow"
    assert counted.count({"component": "moderator", "outcome": "fail_open"}) == 2
