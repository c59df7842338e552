"""Admin API for incident records: the evidence behind blocks, reviews and redactions, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from serve_app.deps import AdminKey, GatewayDep

router = APIRouter(prefix="/admin/incidents", tags=["admin"])


@router.get("", response_model=list[dict[str, Any]])
async def list_incidents(
    gateway: GatewayDep,
    _: AdminKey,
    user_id: Annotated[str | None, Query(max_length=128, description="Only this user's records.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Records as stored (redacted excerpt and hash of the text; the text itself only with `store_prompt`)."""
    return await gateway.incidents.recent(limit, user_id)
