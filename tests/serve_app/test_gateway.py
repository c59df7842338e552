"""A safety layer that cannot answer follows its fail mode: closed refuses, open passes every text it was asked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from serve_app import gateway as gateway_module
from serve_app.config import IngressConfig
from serve_app.errors import ServiceUnavailable
from serve_app.gateway import Gateway


class Unreachable:
    """A deployment response whose replica is gone."""

    cancelled = False

    def __await__(self):
        raise ConnectionError("replica died")
        yield  # pragma: no cover - makes this a generator, as awaitables are

    def cancel(self) -> None:
        self.cancelled = True


def gateway(mode: str) -> Gateway:
    instance = object.__new__(Gateway)  # no Redis: safety_call reads only the config
    instance.config = IngressConfig(fail_modes={"moderator": mode})
    return instance


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    monkeypatch.setattr(gateway_module, "INFRA_ERRORS", SimpleNamespace(inc=lambda tags: found.append(tags)))
    return found


def test_a_failed_safety_layer_fails_closed_by_default(counted: list[dict[str, str]]) -> None:
    response = Unreachable()
    with pytest.raises(ServiceUnavailable) as refused:
        asyncio.run(gateway("fail_closed").safety_call("moderator", response, 1.0, verdicts=3))
    assert refused.value.code == "moderator_unavailable"
    assert response.cancelled
    assert counted == [
        {"component": "moderator", "outcome": "error"},
        {"component": "moderator", "outcome": "fail_closed"},
    ]


def test_failing_open_passes_one_verdict_per_text_asked(counted: list[dict[str, str]]) -> None:
    many = asyncio.run(gateway("fail_open").safety_call("moderator", Unreachable(), 1.0, verdicts=3))
    one = asyncio.run(gateway("fail_open").safety_call("moderator", Unreachable(), 1.0))
    assert [v.reasons for v in many] == [("fail_open",)] * 3
    assert one.reasons == ("fail_open",) and one.action == "allow"
    assert counted.count({"component": "moderator", "outcome": "fail_open"}) == 2
