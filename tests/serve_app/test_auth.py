"""The key store against a real redis-server: rotations and revocations that race leave one working secret at
most, and a revoked key none (they were read-then-write: two rotations left two working secrets)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from serve_app.auth import KeyStore


def run(scenario, redis_server):
    async def main():
        client = aioredis.from_url(redis_server.url.rsplit("/", 1)[0] + "/5", decode_responses=True)
        await client.flushdb()
        try:
            return await scenario(KeyStore(client, b"secret-for-tests"))
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_racing_rotations_leave_exactly_one_working_secret(redis_server) -> None:
    async def scenario(keys: KeyStore):
        created = await keys.create("rita", "standard", "user")
        rotated = await asyncio.gather(*(keys.rotate(created.id) for _ in range(8)))
        secrets = [created.key] + [r.key for r in rotated if r is not None]
        working = [s for s in secrets if await keys.lookup(s) is not None]
        return working, (await keys.get(created.id)), len([r for r in rotated if r is not None])

    working, listed, rotations = run(scenario, redis_server)
    assert rotations == 8  # each one ran, one after another
    assert len(working) == 1, working
    assert listed is not None and not listed.revoked


def test_a_revocation_racing_rotations_leaves_no_working_secret(redis_server) -> None:
    async def scenario(keys: KeyStore):
        created = await keys.create("rory", "standard", "user")
        results = await asyncio.gather(
            *(keys.rotate(created.id) for _ in range(4)), keys.revoke(created.id), keys.rotate(created.id)
        )
        secrets = [created.key] + [r.key for r in results if r is not None and hasattr(r, "key")]
        return [s for s in secrets if await keys.lookup(s) is not None], await keys.get(created.id)

    working, listed = run(scenario, redis_server)
    assert working == [] and listed.revoked
