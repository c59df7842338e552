"""GET /v1/reviews/{id}: the caller's own held answer, released once a reviewer approves it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from deployments.review_store import ReviewNotFound
from serve_app.deps import Context, GatewayDep
from serve_app.errors import NotFound
from serve_app.reviews import call_reviews

router = APIRouter(prefix="/v1", tags=["reviews"])


class HeldAnswer(BaseModel):
    id: str
    object: Literal["review"] = "review"
    status: str
    created_at: float
    decided_at: float | None = None
    answer: str | None = None  # present once approved


@router.get("/reviews/{review_id}", response_model=HeldAnswer)
async def get_held_answer(review_id: str, gateway: GatewayDep, ctx: Context) -> HeldAnswer:
    try:
        item = await call_reviews(gateway, "get", review_id, expected=(ReviewNotFound,))
    except ReviewNotFound:
        item = None
    # Only the key that made the request may read it; anyone else learns nothing, not even that it exists.
    if item is None or item.mode != "hold" or item.key_id != ctx.key.id:
        raise NotFound(f"No held answer '{review_id}' for this API key.")
    decided = item.decisions[-1].decided_at if item.decisions and item.status in ("approved", "rejected") else None
    return HeldAnswer(
        id=item.id,
        status=item.status,
        created_at=item.created_at,
        decided_at=decided,
        answer=item.held_output if item.status == "approved" else None,
    )
