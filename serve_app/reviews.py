"""Calls to the ReviewQueue deployment shared by the reviewer API and the console."""

from __future__ import annotations

from typing import Any

from deployments.review_store import (
    Decision,
    ReviewAlreadyDecided,
    ReviewClaimedByOther,
    ReviewItem,
    ReviewNotFound,
)
from serve_app.errors import Conflict, NotFound, PermissionDenied
from serve_app.gateway import Gateway
from serve_app.metrics import REPUTATION_CHANGES
from serve_app.schemas.admin import ApiKeyInfo


async def call_reviews(gateway: Gateway, method: str, *args: Any, expected: tuple = ()) -> Any:
    handle = getattr(gateway.handles.reviews, method)
    return await gateway.call("review_queue", handle.remote(*args), gateway.config.timeouts.review_s, expected)


async def get_item(gateway: Gateway, item_id: str) -> ReviewItem:
    try:
        return await call_reviews(gateway, "get", item_id, expected=(ReviewNotFound,))
    except ReviewNotFound as exc:
        raise NotFound(f"No review item '{item_id}'.") from exc


async def decide(gateway: Gateway, item_id: str, body: Decision, reviewer: ApiKeyInfo) -> ReviewItem:
    """Decide an item; it moves the reputation of the user whose request or answer it was: a rejection lowers
    it, an approval gives back the `review` penalty the pipeline charged for the item. Nobody decides an item
    that is their own request or answer: a reviewer could otherwise release what the gateway withheld from them."""
    if (await get_item(gateway, item_id)).user_id == reviewer.user_id:
        raise PermissionDenied("A review item of your own request must be decided by another reviewer.")
    try:
        item = await call_reviews(
            gateway,
            "decide",
            item_id,
            body,
            reviewer.user_id,
            expected=(ReviewNotFound, ReviewAlreadyDecided, ReviewClaimedByOther),
        )
    except ReviewNotFound as exc:
        raise NotFound(f"No review item '{item_id}'.") from exc
    except ReviewAlreadyDecided as exc:
        raise Conflict(f"Review item '{item_id}' has already been decided.") from exc
    except ReviewClaimedByOther as exc:
        raise Conflict(f"Review item '{item_id}' is claimed by another reviewer.", code="claimed") from exc
    if item.status == "rejected":
        adjust, event, counted_as = gateway.reputation.penalize, "review_rejected", "review_rejected"
    elif item.status == "approved" and item.penalized:
        adjust, event, counted_as = gateway.reputation.restore, "review", "review_approved"
    else:
        return item
    await adjust(
        item.user_id,
        gateway.config.reputation,
        event,
        item.category,
        actor=reviewer.user_id,
        reason=f"review {item.id} {item.status}: {body.note}"[:500],
    )
    REPUTATION_CHANGES.inc(tags={"event": counted_as})
    return item
