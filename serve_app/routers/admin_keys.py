"""Admin API for keys: create (the secret is shown once), list, revoke, rotate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from serve_app.deps import AdminKey, GatewayDep
from serve_app.errors import InvalidRequest, NotFound
from serve_app.schemas.admin import ApiKeyInfo, CreatedKey, KeyCreate

router = APIRouter(prefix="/admin/keys", tags=["admin"])
Reason = Annotated[str, Query(max_length=500, description="Why: written to the audit entry.")]


@router.post("", response_model=CreatedKey, status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyCreate, gateway: GatewayDep, admin: AdminKey) -> CreatedKey:
    if body.tier not in gateway.config.tiers:
        known = ", ".join(sorted(gateway.config.tiers))
        raise InvalidRequest(
            f"Unknown tier '{body.tier}'; configured tiers: {known}.", param="tier", code="unknown_tier"
        )
    return await gateway.keys.create(
        body.user_id, body.tier, body.role, body.limits, actor=admin.user_id, reason=body.reason
    )


@router.get("", response_model=list[ApiKeyInfo])
async def list_keys(gateway: GatewayDep, _: AdminKey) -> list[ApiKeyInfo]:
    return await gateway.keys.list()


@router.delete("/{key_id}", response_model=ApiKeyInfo)
async def revoke_key(key_id: str, gateway: GatewayDep, admin: AdminKey, reason: Reason = "") -> ApiKeyInfo:
    revoked = await gateway.keys.revoke(key_id, actor=admin.user_id, reason=reason)
    if revoked is None:
        raise NotFound(f"No API key with id '{key_id}'.")
    return revoked


@router.post("/{key_id}/rotate", response_model=CreatedKey)
async def rotate_key(key_id: str, gateway: GatewayDep, admin: AdminKey, reason: Reason = "") -> CreatedKey:
    """A new secret for the same key id and settings; the old secret is refused from the next request on."""
    rotated = await gateway.keys.rotate(key_id, actor=admin.user_id, reason=reason)
    if rotated is None:
        raise NotFound(f"No active API key with id '{key_id}'.")
    return rotated
