"""API keys in Redis, stored only as keyed hashes (HMAC-SHA256 under a server secret).

A key is `ss-<id>-<secret>` with 256 bits of randomness in the secret; Redis holds only the HMAC of the whole
key, so neither a leaked Redis dump nor a leaked dump plus a guess at the format gives a usable key without
the server secret. The short id (the key's prefix) identifies it afterwards (listing, revocation, rotation)
without revealing it. Lookups go to Redis on every request, so a revocation or rotation holds on the next
request on every replica.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from deployments.audit import AUDIT_STREAM, audit_fields
from serve_app.config import Limits
from serve_app.schemas.admin import ApiKeyInfo, CreatedKey, Role

KEY_BY_HASH = "safeserve:apikey:{}"
HASH_BY_ID = "safeserve:apikey_id:{}"
KEY_IDS = "safeserve:apikeys"


def new_secret_key(key_id: str) -> str:
    return f"ss-{key_id}-{secrets.token_urlsafe(32)}"


class KeyStore:
    def __init__(self, redis: aioredis.Redis, hash_secret: bytes) -> None:
        self.redis = redis
        self._hash_secret = hash_secret

    def hash_key(self, key: str) -> str:
        return hmac.new(self._hash_secret, key.encode(), hashlib.sha256).hexdigest()

    async def create(
        self,
        user_id: str,
        tier: str,
        role: Role,
        limits: Limits | None = None,
        actor: str = "admin",
        reason: str = "",
    ) -> CreatedKey:
        key_id = secrets.token_hex(6)
        key = new_secret_key(key_id)
        info = ApiKeyInfo(id=key_id, user_id=user_id, tier=tier, role=role, limits=limits, created_at=time.time())
        digest = self.hash_key(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(KEY_BY_HASH.format(digest), info.model_dump_json())
            pipe.set(HASH_BY_ID.format(key_id), digest)
            pipe.zadd(KEY_IDS, {key_id: info.created_at})
            pipe.xadd(
                AUDIT_STREAM, audit_fields(actor, "key.create", f"key:{key_id}", after=_public(info), reason=reason)
            )
            await pipe.execute()
        return CreatedKey(**info.model_dump(exclude={"prefix"}), key=key)

    async def lookup(self, key: str) -> ApiKeyInfo | None:
        raw = await self.redis.get(KEY_BY_HASH.format(self.hash_key(key)))
        if raw is None:
            return None
        info = ApiKeyInfo.model_validate_json(raw)
        return None if info.revoked else info

    async def _find(self, key_id: str) -> tuple[str, ApiKeyInfo] | None:
        """The key's stored hash and record."""
        digest = await self.redis.get(HASH_BY_ID.format(key_id))
        raw = digest and await self.redis.get(KEY_BY_HASH.format(digest))
        return (digest, ApiKeyInfo.model_validate_json(raw)) if raw else None

    async def get(self, key_id: str) -> ApiKeyInfo | None:
        found = await self._find(key_id)
        return found[1] if found else None

    async def list(self) -> list[ApiKeyInfo]:
        ids = await self.redis.zrange(KEY_IDS, 0, -1)
        digests = await self.redis.mget([HASH_BY_ID.format(i) for i in ids]) if ids else []
        raws = await self.redis.mget([KEY_BY_HASH.format(d) for d in digests if d]) if digests else []
        return [ApiKeyInfo.model_validate_json(raw) for raw in raws if raw]

    async def revoke(self, key_id: str, actor: str = "admin", reason: str = "") -> ApiKeyInfo | None:
        async def revoke_it(pipe, digest: str, info: ApiKeyInfo) -> ApiKeyInfo:
            revoked = info.model_copy(update={"revoked": True})
            pipe.set(KEY_BY_HASH.format(digest), revoked.model_dump_json())
            entry = audit_fields(actor, "key.revoke", f"key:{key_id}", _public(info), _public(revoked), reason)
            pipe.xadd(AUDIT_STREAM, entry)
            return revoked

        return await self._change(key_id, revoke_it, revoked_too=True)

    async def rotate(self, key_id: str, actor: str = "admin", reason: str = "") -> CreatedKey | None:
        """A new secret for the same id, user, tier, role and limits; the old secret stops working at once."""
        key = new_secret_key(key_id)
        new_digest = self.hash_key(key)

        async def rotate_it(pipe, old_digest: str, info: ApiKeyInfo) -> CreatedKey:
            rotated = info.model_copy(update={"rotated_at": time.time()})
            pipe.delete(KEY_BY_HASH.format(old_digest))
            pipe.set(KEY_BY_HASH.format(new_digest), rotated.model_dump_json())
            pipe.set(HASH_BY_ID.format(key_id), new_digest)
            entry = audit_fields(actor, "key.rotate", f"key:{key_id}", _public(info), _public(rotated), reason)
            pipe.xadd(AUDIT_STREAM, entry)
            return CreatedKey(**rotated.model_dump(exclude={"prefix"}), key=key)

        return await self._change(key_id, rotate_it, revoked_too=False)

    async def _change(self, key_id: str, queue: Callable, revoked_too: bool, tries: int = 20) -> Any:
        """Read the key and write its change in one transaction that fails if either record changed meanwhile
        (WATCH), then try again on what is there now: two racing rotations once left two working secrets, one of
        them unlisted. `queue(pipe, digest, info)` queues the writes and returns the result; None if the key is
        unknown (or revoked, unless `revoked_too`)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(tries):
                try:
                    await pipe.watch(HASH_BY_ID.format(key_id))
                    digest = await pipe.get(HASH_BY_ID.format(key_id))
                    if digest is None:
                        return None
                    await pipe.watch(KEY_BY_HASH.format(digest))
                    raw = await pipe.get(KEY_BY_HASH.format(digest))
                    if raw is None:  # a rotation committed between the two reads: read again
                        continue
                    info = ApiKeyInfo.model_validate_json(raw)
                    if info.revoked and not revoked_too:
                        return None
                    pipe.multi()
                    result = await queue(pipe, digest, info)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue
                finally:
                    await pipe.reset()
        raise WatchError(f"key {key_id} kept changing; try again")

    async def erase_user(self, user_id: str) -> list[str]:
        """Delete every key record of a user (revoked ones too); returns their ids. The audit entries about
        the keys stay: they hold ids, tiers and roles, never a secret or a hash."""
        ids = [info.id for info in await self.list() if info.user_id == user_id]
        for key_id in ids:
            found = await self._find(key_id)
            async with self.redis.pipeline(transaction=True) as pipe:
                if found:
                    pipe.delete(KEY_BY_HASH.format(found[0]))
                pipe.delete(HASH_BY_ID.format(key_id))
                pipe.zrem(KEY_IDS, key_id)
                await pipe.execute()
        return ids


def _public(info: ApiKeyInfo) -> dict:
    """What the audit trail keeps of a key: never a secret or a hash."""
    return info.model_dump(mode="json", include={"user_id", "tier", "role", "limits", "revoked"})
