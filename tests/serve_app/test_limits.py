"""Rate limits and quotas against a real redis-server: atomic under concurrency, OpenAI's headers."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
import redis.asyncio as aioredis

from serve_app.config import Limits
from serve_app.limits import RateLimiter, duration


def run(coroutine_factory, redis_server):
    """Run `coroutine_factory(limiter)` on a fresh client in a fresh event loop."""

    async def main():
        client = aioredis.from_url(redis_server.url, decode_responses=True)
        try:
            return await coroutine_factory(RateLimiter(client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def key() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_of_twenty_concurrent_requests_exactly_the_limit_pass(redis_server) -> None:
    limits = Limits(requests_per_minute=5)
    key_id = key()

    async def burst(limiter: RateLimiter):
        # Two limiters on two connections: as two ingress replicas would be.
        other = RateLimiter(aioredis.from_url(redis_server.url, decode_responses=True))
        try:
            calls = [(limiter if i % 2 else other).admit(key_id, limits, tokens=10) for i in range(20)]
            return await asyncio.gather(*calls)
        finally:
            await other.redis.aclose()

    admissions = run(burst, redis_server)
    passed = [a for a in admissions if a.refused is None]
    refused = [a for a in admissions if a.refused is not None]
    assert len(passed) == 5 and len(refused) == 15
    assert sorted(a.requests.remaining for a in passed) == [0, 1, 2, 3, 4]
    for admission in refused:
        assert admission.refused.name == "requests"
        # The next request may pass once one request's share of the minute (12 s) has gone by.
        assert 0 < admission.refused.retry_ms <= 12_000
        headers = admission.headers()
        assert headers["x-ratelimit-limit-requests"] == "5"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"].endswith("s")


def test_tokens_are_reserved_and_the_unused_part_given_back(redis_server) -> None:
    limits = Limits(tokens_per_minute=1000, tokens_per_day=1500)
    key_id = key()

    async def scenario(limiter: RateLimiter):
        first = await limiter.admit(key_id, limits, tokens=600)
        too_many = await limiter.admit(key_id, limits, tokens=600)  # 1200 > 1000 per minute
        await limiter.settle(key_id, limits, first, used_tokens=100)  # 500 given back
        after_settling = await limiter.admit(key_id, limits, tokens=600)
        over_quota = await limiter.admit(key_id, limits, tokens=900)  # 100 + 600 + 900 > 1500 a day
        return first, too_many, after_settling, over_quota

    first, too_many, after_settling, over_quota = run(scenario, redis_server)
    assert first.refused is None and first.tokens.remaining == 400 and first.day.remaining == 900
    headers = first.headers()
    assert headers["x-ratelimit-limit-tokens"] == "1000" and headers["x-ratelimit-remaining-tokens"] == "400"
    assert headers["x-ratelimit-reset-tokens"] == duration(first.tokens.reset_ms) and first.tokens.reset_ms > 0
    assert too_many.headers()["x-ratelimit-remaining-tokens"] == "400"
    assert too_many.refused.name == "tokens" and too_many.refused.retry_ms > 0
    assert after_settling.refused is None and after_settling.day.remaining == 800
    assert over_quota.refused.name == "tokens-day"
    assert over_quota.headers()["x-ratelimit-limit-tokens-day"] == "1500"


def test_a_refused_request_counts_against_nothing(redis_server) -> None:
    limits = Limits(requests_per_minute=1, tokens_per_day=100)
    key_id = key()

    async def scenario(limiter: RateLimiter):
        big = await limiter.admit(key_id, limits, tokens=101)  # over the daily quota: refused
        small = await limiter.admit(key_id, limits, tokens=50)
        return big, small

    big, small = run(scenario, redis_server)
    assert big.refused.name == "tokens-day"
    assert small.refused is None and small.day.remaining == 50


def test_no_limits_means_no_headers(redis_server) -> None:
    admission = run(lambda limiter: limiter.admit(key(), Limits(), tokens=10), redis_server)
    assert admission.refused is None and admission.headers() == {}


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0ms"), (250, "250ms"), (1000, "1s"), (59_500, "1m0s"), (360_000, "6m0s"), (3_723_000, "1h2m3s")],
)
def test_reset_times_read_as_openai_writes_them(ms: int, text: str) -> None:
    assert duration(ms) == text


@pytest.mark.parametrize(
    ("mode", "level", "message"),
    [
        ("fail_closed", logging.ERROR, "rate limiter unavailable (ConnectionError): failing closed"),
        ("fail_open", logging.WARNING, "rate limiter unavailable (ConnectionError): failing open as configured"),
    ],
)
def test_an_unreachable_redis_follows_the_rate_limiters_fail_mode_and_is_counted_and_logged(
    mode: str, level: int, message: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from harness.processes import free_port
    from serve_app import access
    from serve_app.access import _reserve
    from serve_app.config import IngressConfig
    from serve_app.errors import ServiceUnavailable
    from serve_app.schemas.admin import ApiKeyInfo

    async def scenario():
        dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        gateway = SimpleNamespace(limiter=RateLimiter(dead), config=IngressConfig(fail_modes={"rate_limiter": mode}))
        ctx = SimpleNamespace(key=ApiKeyInfo(id="k", user_id="u", tier="free", role="user", created_at=0.0))
        try:
            return await _reserve(gateway, ctx, Limits(requests_per_minute=5), tokens=10)
        finally:
            await dead.aclose()

    counted: list[dict[str, str]] = []
    monkeypatch.setattr(access, "INFRA_ERRORS", SimpleNamespace(inc=lambda tags: counted.append(tags)))
    logger = logging.getLogger("ray.serve.safeserve.access")
    # Ray's `ray.serve` logger does not propagate to the root, where caplog listens.
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, caplog.handler])
    if mode == "fail_closed":
        with pytest.raises(ServiceUnavailable) as refused:
            asyncio.run(scenario())
        assert refused.value.code == "rate_limiter_unavailable"
    else:
        assert asyncio.run(scenario()) is None  # admitted without a reservation
    assert counted == [{"component": "rate_limiter", "outcome": mode}]
    # A set: where Serve's logging propagates after all, a record reaches caplog twice.
    logged = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == logger.name}
    assert logged == {(level, message)}
