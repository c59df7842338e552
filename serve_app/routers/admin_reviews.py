"""Admin and reviewer API for the review queue: list items, decide one, read the audit trail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from deployments.review_store import Decision, ReviewAlreadyDecided, ReviewItem, ReviewNotFound
from serve_app.deps import GatewayDep, ReviewerKey
from serve_app.errors import Conflict, NotFound
from serve_app.metrics import REPUTATION_CHANGES

router = APIRouter(prefix="/admin", tags=["admin"])
StatusFilter = Literal["pending", "escalated", "approved", "rejected", "all"]


@router.get("/reviews", response_model=list[ReviewItem])
async def list_reviews(
    gateway: GatewayDep,
    _: ReviewerKey,
    status: StatusFilter = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReviewItem]:
    wanted = None if status == "all" else status
    return await gateway.call(
        "review_queue", gateway.handles.reviews.list.remote(wanted, limit), gateway.config.timeouts.review_s
    )


@router.get("/reviews/{item_id}", response_model=ReviewItem)
async def get_review(item_id: str, gateway: GatewayDep, _: ReviewerKey) -> ReviewItem:
    try:
        return await gateway.call(
            "review_queue",
            gateway.handles.reviews.get.remote(item_id),
            gateway.config.timeouts.review_s,
            (ReviewNotFound,),
        )
    except ReviewNotFound as exc:
        raise NotFound(f"No review item '{item_id}'.") from exc


@router.post("/reviews/{item_id}/decision", response_model=ReviewItem)
async def decide_review(item_id: str, body: Decision, gateway: GatewayDep, reviewer: ReviewerKey) -> ReviewItem:
    """Decide an item; a rejection lowers the reputation of the user whose request or answer it was."""
    try:
        item = await gateway.call(
            "review_queue",
            gateway.handles.reviews.decide.remote(item_id, body, reviewer.user_id),
            gateway.config.timeouts.review_s,
            (ReviewNotFound, ReviewAlreadyDecided),
        )
    except ReviewNotFound as exc:
        raise NotFound(f"No review item '{item_id}'.") from exc
    except ReviewAlreadyDecided as exc:
        raise Conflict(f"Review item '{item_id}' has already been decided.") from exc
    if item.status == "rejected":
        await gateway.reputation.penalize(
            item.user_id,
            gateway.config.reputation,
            "review_rejected",
            item.category,
            actor=reviewer.user_id,
            reason=f"review {item.id} rejected: {body.note}"[:500],
        )
        REPUTATION_CHANGES.inc(tags={"event": "review_rejected"})
    return item


@router.get("/audit", response_model=list[dict[str, str]])
async def read_audit(
    gateway: GatewayDep, _: ReviewerKey, count: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, str]]:
    return await gateway.call(
        "review_queue", gateway.handles.reviews.audit.remote(count), gateway.config.timeouts.review_s
    )
