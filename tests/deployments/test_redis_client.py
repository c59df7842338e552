"""The shared Redis client: a dead pooled connection is retried on a new one, a command that timed out is not
(Redis may still run it, and the limit and reputation scripts, `HINCRBY` and `XADD` are not idempotent)."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import TimeoutError

from deployments.config import RuntimeSettings
from deployments.redis_client import connect
from harness.processes import RedisServer

# Counts its call, then keeps Redis busy for 0.3 s: past the client's timeout below, and short enough for a
# retry (on a new connection, once the script is done) to run it again.
SLOW_INCREMENT = """
redis.call('INCR', KEYS[1])
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 300000
return 1
"""


@pytest.fixture
def server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_command_that_timed_out_is_not_run_again(server) -> None:
    async def scenario() -> None:
        client = connect(RuntimeSettings(redis_url=server.url, redis_timeout_s=0.2))
        with pytest.raises(TimeoutError):
            await client.eval(SLOW_INCREMENT, 1, "calls")
        await asyncio.sleep(0.5)  # a retry, had there been one, would have run by now
        await client.aclose()

    asyncio.run(scenario())
    assert server.client().get("calls") == "1"


def test_a_connection_left_dead_by_a_redis_restart_is_replaced_without_failing_the_command(server) -> None:
    async def scenario() -> list:
        client = connect(RuntimeSettings(redis_url=server.url))
        await asyncio.gather(*(client.incr("n") for _ in range(4)))  # several pooled connections
        server.stop()
        server.start()
        results = await asyncio.gather(*(client.incr("n") for _ in range(4)), return_exceptions=True)
        await client.aclose()
        return results

    assert not [result for result in asyncio.run(scenario()) if isinstance(result, Exception)]
