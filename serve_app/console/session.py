"""Console sessions: a signed, HttpOnly, SameSite=Strict cookie, and a CSRF token for every form.

The cookie holds the key id, the role, the key's version (when it was last rotated; for the admin key a
fingerprint of it) and the session's CSRF token, signed (itsdangerous) with a secret derived from the key-hash
secret and expiring after `SESSION_SECONDS`; never the API key. Every request checks the key again, so a
revoked, rotated or replaced key, or a lowered role, ends the session at once. Forms carry the CSRF token; the sign-in
form, before any session exists, uses a signed double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from serve_app.config import Settings

SESSION_COOKIE = "safeserve_console"
LOGIN_COOKIE = "safeserve_console_login"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    key_id: str
    user_id: str
    role: str
    csrf: str
    key_version: str = ""  # a cookie from before key versions were kept matches no key: signed out


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    secret = hmac.new(settings.hash_secret(), b"safeserve-console", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt=f"safeserve-console-{purpose}")


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )


def key_version(settings: Settings, rotated_at: float | None, created_at: float, is_admin: bool) -> str:
    """What changes when the key's secret does: its last rotation, or a fingerprint of the admin key."""
    if is_admin:
        admin = settings.admin_key.get_secret_value().encode() if settings.admin_key else b""
        return hmac.new(settings.hash_secret(), admin, hashlib.sha256).hexdigest()[:16]
    return repr(rotated_at or created_at)


def start(
    request: Request, response: Response, settings: Settings, key_id: str, user_id: str, role: str, version: str
) -> None:
    data = {
        "key_id": key_id,
        "user_id": user_id,
        "role": role,
        "csrf": secrets.token_urlsafe(24),
        "key_version": version,
    }
    _set_cookie(request, response, SESSION_COOKIE, _serializer(settings, "session").dumps(data), SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path="/console")


def read(request: Request, settings: Settings) -> ConsoleSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return ConsoleSession(**_serializer(settings, "session").loads(raw, max_age=SESSION_SECONDS))
    except (BadSignature, TypeError):
        return None


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")


def login_token(settings: Settings) -> tuple[str, str]:
    """A CSRF token for the sign-in form and its signed copy for the cookie (double submit)."""
    token = secrets.token_urlsafe(24)
    return token, _serializer(settings, "login").dumps(token)


def set_login_cookie(request: Request, response: Response, signed: str) -> None:
    _set_cookie(request, response, LOGIN_COOKIE, signed, 600)


def login_token_valid(request: Request, settings: Settings, submitted: str) -> bool:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw or not submitted:
        return False
    try:
        expected = _serializer(settings, "login").loads(raw, max_age=600)
    except BadSignature:
        return False
    return hmac.compare_digest(str(expected), submitted)


def csrf_valid(session: ConsoleSession, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted)
