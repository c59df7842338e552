"""API keys in Redis, stored only as SHA-256 hashes.

A key is `ss-<id>-<secret>` with 256 bits of randomness in the secret, so an unsalted hash is enough
to make a leaked Redis dump useless; the short id identifies the key afterwards (listing, revocation)
without revealing it. Lookups go to Redis on every request, so a revocation holds on the next request
on every replica.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import redis.asyncio as aioredis

from serve_app.schemas.admin import ApiKeyInfo, CreatedKey, Role

KEY_BY_HASH = "safeserve:apikey:{}"
HASH_BY_ID = "safeserve:apikey_id:{}"
KEY_IDS = "safeserve:apikeys"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def create(self, user_id: str, tier: str, role: Role) -> CreatedKey:
        key_id = secrets.token_hex(6)
        key = f"ss-{key_id}-{secrets.token_urlsafe(32)}"
        info = ApiKeyInfo(id=key_id, user_id=user_id, tier=tier, role=role, created_at=time.time())
        digest = hash_key(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(KEY_BY_HASH.format(digest), info.model_dump_json())
            pipe.set(HASH_BY_ID.format(key_id), digest)
            pipe.zadd(KEY_IDS, {key_id: info.created_at})
            await pipe.execute()
        return CreatedKey(**info.model_dump(), key=key)

    async def lookup(self, key: str) -> ApiKeyInfo | None:
        raw = await self.redis.get(KEY_BY_HASH.format(hash_key(key)))
        if raw is None:
            return None
        info = ApiKeyInfo.model_validate_json(raw)
        return None if info.revoked else info

    async def list(self) -> list[ApiKeyInfo]:
        ids = await self.redis.zrange(KEY_IDS, 0, -1)
        digests = await self.redis.mget([HASH_BY_ID.format(i) for i in ids]) if ids else []
        raws = await self.redis.mget([KEY_BY_HASH.format(d) for d in digests if d]) if digests else []
        return [ApiKeyInfo.model_validate_json(raw) for raw in raws if raw]

    async def revoke(self, key_id: str) -> ApiKeyInfo | None:
        digest = await self.redis.get(HASH_BY_ID.format(key_id))
        raw = digest and await self.redis.get(KEY_BY_HASH.format(digest))
        if not raw:
            return None
        info = ApiKeyInfo.model_validate_json(raw).model_copy(update={"revoked": True})
        await self.redis.set(KEY_BY_HASH.format(digest), info.model_dump_json())
        return info
