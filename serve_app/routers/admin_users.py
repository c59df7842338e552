"""Admin API for users: read the reputation, reset it, suspend, lift a suspension; erase a user's data.

Every change goes to the audit stream with the admin's identity and the reason given.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from serve_app.deps import AdminKey, GatewayDep
from serve_app.erasure import erase_user_data
from serve_app.metrics import REPUTATION_CHANGES
from serve_app.schemas.admin import Erasure, Reputation, Suspension, UserAction

router = APIRouter(prefix="/admin/users", tags=["admin"])
UserIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")]


@router.get("/{user_id}", response_model=Reputation)
async def read_user(user_id: UserIdPath, gateway: GatewayDep, _: AdminKey) -> Reputation:
    return await gateway.reputation.view(user_id, gateway.config.reputation)


@router.post("/{user_id}/reset", response_model=Reputation)
async def reset_user(user_id: UserIdPath, body: UserAction, gateway: GatewayDep, admin: AdminKey) -> Reputation:
    """Back to the initial score, any suspension lifted."""
    await gateway.reputation.reset(user_id, gateway.config.reputation, actor=admin.user_id, reason=body.reason)
    REPUTATION_CHANGES.inc(tags={"event": "reset"})
    return await gateway.reputation.view(user_id, gateway.config.reputation)


@router.post("/{user_id}/suspend", response_model=Reputation)
async def suspend_user(user_id: UserIdPath, body: Suspension, gateway: GatewayDep, admin: AdminKey) -> Reputation:
    await gateway.reputation.suspend(
        user_id, gateway.config.reputation, body.minutes, actor=admin.user_id, reason=body.reason
    )
    REPUTATION_CHANGES.inc(tags={"event": "suspend"})
    return await gateway.reputation.view(user_id, gateway.config.reputation)


@router.post("/{user_id}/lift", response_model=Reputation)
async def lift_suspension(user_id: UserIdPath, body: UserAction, gateway: GatewayDep, admin: AdminKey) -> Reputation:
    """End a suspension now; the user comes back on the strict policy until the score recovers."""
    await gateway.reputation.lift(user_id, gateway.config.reputation, actor=admin.user_id, reason=body.reason)
    REPUTATION_CHANGES.inc(tags={"event": "lift"})
    return await gateway.reputation.view(user_id, gateway.config.reputation)


@router.delete("/{user_id}/data", response_model=Erasure)
async def erase_user(
    user_id: UserIdPath,
    gateway: GatewayDep,
    admin: AdminKey,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="Why, e.g. the request's ticket.")],
) -> Erasure:
    """Erase what SafeServe stores about a user: API keys, rate-limit counters, reputation, incident records
    and review items. The audit trail keeps its entries and records the erasure."""
    return await erase_user_data(gateway, user_id, actor=admin.user_id, reason=reason)
