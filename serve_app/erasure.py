"""Erasure of a user's stored data (`DELETE /admin/users/{id}/data`), the right-to-erasure request.

Keys go first, so the user cannot add data while the rest is erased; every step is idempotent, so a request
that failed half way (Redis or the review queue unavailable) is completed by sending it again.
"""

from __future__ import annotations

from deployments.audit import AUDIT_STREAM, audit_fields
from serve_app.gateway import Gateway
from serve_app.reviews import call_reviews
from serve_app.schemas.admin import Erasure


async def erase_user_data(gateway: Gateway, user_id: str, actor: str, reason: str) -> Erasure:
    keys = await gateway.keys.erase_user(user_id)
    counters = sum([await gateway.limiter.erase(key_id) for key_id in keys])
    erasure = Erasure(
        user_id=user_id,
        keys=keys,
        rate_limit_counters=counters,
        reputation=await gateway.reputation.erase(user_id),
        incidents=await gateway.incidents.erase_user(user_id),
        review_items=await call_reviews(gateway, "erase_user", user_id),
    )
    summary = erasure.model_dump(exclude={"user_id"})
    await gateway.redis.xadd(
        AUDIT_STREAM, audit_fields(actor, "user.erased", f"user:{user_id}", after=summary, reason=reason)
    )
    return erasure
