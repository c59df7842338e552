"""Reviewer and admin API for the review queue: list, claim, read and decide items, queue figures, audit."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from deployments.review_report import ThresholdReport
from deployments.review_store import Decision, ReviewItem
from serve_app.deps import GatewayDep, ReviewerKey
from serve_app.reviews import call_reviews, decide, get_item

router = APIRouter(prefix="/admin", tags=["admin"])
StatusFilter = Literal["pending", "claimed", "escalated", "approved", "rejected", "open", "all"]


@router.get("/reviews", response_model=list[ReviewItem])
async def list_reviews(
    gateway: GatewayDep,
    _: ReviewerKey,
    status: StatusFilter = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ReviewItem]:
    return await call_reviews(gateway, "list", None if status == "all" else status, limit)


@router.get("/reviews/stats", response_model=dict[str, float])
async def review_stats(gateway: GatewayDep, _: ReviewerKey) -> dict[str, float]:
    """Queue depth, oldest pending age, decisions in the last hour, open SLA misses, items spooled locally."""
    return await call_reviews(gateway, "stats")


@router.get("/reviews/report", response_model=ThresholdReport)
async def review_report(
    gateway: GatewayDep, _: ReviewerKey, days: Annotated[float, Query(gt=0, le=365)] = 30
) -> ThresholdReport:
    """Approve, reject and escalate counts and rates for the items queued in the last `days`, per layer,
    category and score band: where the review thresholds send people too much, or too little."""
    return await call_reviews(gateway, "report", days)


@router.post("/reviews/claim", response_model=ReviewItem, responses={204: {"description": "Nothing to review."}})
async def claim_review(gateway: GatewayDep, reviewer: ReviewerKey) -> ReviewItem | Response:
    """The next item for this reviewer (one whose claim timed out first); it is theirs for `claim_timeout_s`."""
    item = await call_reviews(gateway, "claim", reviewer.user_id)
    return item if item is not None else Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/reviews/{item_id}", response_model=ReviewItem)
async def get_review(item_id: str, gateway: GatewayDep, _: ReviewerKey) -> ReviewItem:
    return await get_item(gateway, item_id)


@router.post("/reviews/{item_id}/decision", response_model=ReviewItem)
async def decide_review(item_id: str, body: Decision, gateway: GatewayDep, reviewer: ReviewerKey) -> ReviewItem:
    return await decide(gateway, item_id, body, reviewer)


@router.get("/audit", response_model=list[dict[str, str]])
async def read_audit(
    gateway: GatewayDep,
    _: ReviewerKey,
    count: Annotated[int, Query(ge=1, le=1000)] = 100,
    target: Annotated[
        str | None, Query(max_length=200, description="Only entries about this item or user:<id>.")
    ] = None,
) -> list[dict[str, str]]:
    return await call_reviews(gateway, "audit", count, target)
