"""The reviewer console: sign in with a reviewer or admin key, work the queue, decide items, read the audit trail.

Pages are rendered on the server with Jinja2 (autoescaped: review items hold untrusted text). Every state
change is a POST with the session's CSRF token; every response forbids framing, caching and foreign scripts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from redis.exceptions import RedisError

from deployments.review_store import Decision
from serve_app.console import session as sessions
from serve_app.console.highlight import flagged_spans, segments
from serve_app.deps import ADMIN_IDENTITY, GatewayDep, identify
from serve_app.errors import SafeServeError
from serve_app.gateway import Gateway
from serve_app.reviews import call_reviews, decide, get_item
from serve_app.schemas.admin import ApiKeyInfo

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["datetime"] = lambda ts: datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
router = APIRouter(prefix="/console", include_in_schema=False)
REVIEWER_ROLES = ("reviewer", "admin")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Field = Annotated[str, Form(max_length=4000)]


def _page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _signed_in(request: Request, gateway: Gateway) -> tuple[sessions.ConsoleSession, ApiKeyInfo] | None:
    """The session and its key, checked again now: a revoked or rotated key or a lowered role ends the session."""
    session = sessions.read(request, gateway.settings)
    if session is None:
        return None
    if session.key_id == ADMIN_IDENTITY.id:
        current = _version(gateway, ADMIN_IDENTITY)
        return (session, ADMIN_IDENTITY) if gateway.settings.admin_key and session.key_version == current else None
    key = await gateway.keys.get(session.key_id)
    if key is None or key.revoked or key.role not in REVIEWER_ROLES or session.key_version != _version(gateway, key):
        return None
    return session, key


def _version(gateway: Gateway, key: ApiKeyInfo) -> str:
    return sessions.key_version(gateway.settings, key.rotated_at, key.created_at, key is ADMIN_IDENTITY)


@router.get("/static/console.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "console.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, gateway: GatewayDep, error: str | None = None) -> HTMLResponse:
    token, signed = sessions.login_token(gateway.settings)
    response = _page(request, "login.html", error=error, csrf=token)
    sessions.set_login_cookie(request, response, signed)
    return response


@router.post("/login")
async def login(request: Request, gateway: GatewayDep, api_key: Field = "", csrf: Field = "") -> Response:
    if not sessions.login_token_valid(request, gateway.settings, csrf):
        return _redirect("/console/login?error=The+form+expired%3B+please+sign+in+again.")
    try:
        key = await identify(gateway, api_key.strip())
    except RedisError:
        return _redirect("/console/login?error=Sign-in+is+unavailable+right+now%3B+please+retry.")
    if key is None or key.role not in REVIEWER_ROLES:
        return _redirect("/console/login?error=That+key+is+not+a+reviewer+or+admin+key.")
    response = _redirect("/console")
    sessions.start(request, response, gateway.settings, key.id, key.user_id, key.role, _version(gateway, key))
    return response


@router.post("/logout")
async def logout(request: Request, gateway: GatewayDep, csrf: Field = "") -> Response:
    signed_in = await _signed_in(request, gateway)
    response = _redirect("/console/login")
    if signed_in and sessions.csrf_valid(signed_in[0], csrf):
        sessions.end(response)
    return response


@router.get("", response_class=HTMLResponse)
async def queue(
    request: Request,
    gateway: GatewayDep,
    category: str = "",
    min_age_minutes: int = 0,
    status: str = "open",
    message: str = "",
) -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None:
        return _redirect("/console/login")
    session, _ = signed_in
    status = status if status in ("open", "pending", "claimed", "escalated", "approved", "rejected", "all") else "open"
    items = await call_reviews(gateway, "list", None if status == "all" else status, 500)
    now = time.time()
    categories = sorted({item.category for item in items if item.category})
    shown = [
        item
        for item in items
        if (not category or item.category == category) and now - item.created_at >= min_age_minutes * 60
    ]
    stats = await call_reviews(gateway, "stats")
    return _page(
        request,
        "queue.html",
        session=session,
        items=shown,
        now=now,
        categories=categories,
        filters={"category": category, "min_age_minutes": min_age_minutes, "status": status},
        stats=stats,
        message=message,
    )


@router.post("/claim")
async def claim(request: Request, gateway: GatewayDep, csrf: Field = "") -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None or not sessions.csrf_valid(signed_in[0], csrf):
        return _redirect("/console/login")
    item = await call_reviews(gateway, "claim", signed_in[1].user_id)
    return _redirect(f"/console/items/{item.id}" if item else "/console?message=Nothing+to+review.")


async def output_spans(gateway: Gateway, text: str) -> list[tuple[int, int]]:
    """An answer's flagged spans by the output policy's own rules, which the Moderator holds; while it cannot be
    reached, the ingress's deny patterns and listed words (the page still works, with fewer marks)."""
    if not text:
        return []
    try:
        return await gateway.call(
            "moderator", gateway.handles.moderator.flagged_spans.remote(text), gateway.config.timeouts.moderate_s
        )
    except SafeServeError:
        return flagged_spans(text, gateway.input_patterns)


@router.get("/items/{item_id}", response_class=HTMLResponse)
async def item_page(request: Request, item_id: str, gateway: GatewayDep) -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None:
        return _redirect("/console/login")
    try:
        item = await get_item(gateway, item_id)
    except SafeServeError as exc:
        return _page(request, "error.html", status_code=exc.status_code, session=signed_in[0], message=exc.message)
    # A held answer is shown whole: approving it releases exactly that text, not the excerpt.
    request_text, output = item.request_excerpt, item.held_output or item.output_excerpt or ""
    marked = {
        "request": segments(request_text, flagged_spans(request_text, gateway.input_patterns)),
        "output": segments(output, await output_spans(gateway, output)),
    }
    located = any(flagged for pieces in marked.values() for _, flagged in pieces)
    trail = await call_reviews(gateway, "audit", 50, item.id)
    return _page(
        request,
        "item.html",
        session=signed_in[0],
        item=item,
        marked=marked,
        located=located,
        trail=trail,
        now=time.time(),
    )


@router.post("/items/{item_id}/decision")
async def decide_item(
    request: Request,
    item_id: str,
    gateway: GatewayDep,
    decision: Field = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf: Field = "",
) -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None or not sessions.csrf_valid(signed_in[0], csrf):
        return _redirect("/console/login")
    if decision not in ("approve", "reject", "escalate"):
        return _redirect(f"/console/items/{item_id}")
    try:
        decided = await decide(gateway, item_id, Decision(decision=decision, note=note), signed_in[1])
    except SafeServeError as exc:
        return _page(request, "error.html", status_code=exc.status_code, session=signed_in[0], message=exc.message)
    return _redirect(f"/console?message=Item+{decided.id}+{decided.status}.")


@router.get("/report", response_class=HTMLResponse)
async def report(request: Request, gateway: GatewayDep, days: int = 30) -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None:
        return _redirect("/console/login")
    days = min(max(days, 1), 365)
    figures = await call_reviews(gateway, "report", days)
    return _page(request, "report.html", session=signed_in[0], report=figures, days=days)


@router.get("/audit", response_class=HTMLResponse)
async def audit(request: Request, gateway: GatewayDep, target: str = "") -> Response:
    signed_in = await _signed_in(request, gateway)
    if signed_in is None:
        return _redirect("/console/login")
    entries = await call_reviews(gateway, "audit", 200, target[:200] or None)
    return _page(request, "audit.html", session=signed_in[0], entries=entries, target=target)
