"""FastAPI dependencies: the gateway, the caller's identity and role, the per-request context.

Every dependency is `async def`, even those that do not await: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop per dependency per request."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from redis.exceptions import RedisError

from deployments.logs import get_logger
from serve_app.errors import MissingApiKey, NotAuthenticated, PermissionDenied, ServiceUnavailable
from serve_app.gateway import Gateway
from serve_app.metrics import INFRA_ERRORS
from serve_app.schemas.admin import ApiKeyInfo
from serve_app.timing import StageTimer

logger = get_logger("auth")
ADMIN_IDENTITY = ApiKeyInfo(id="admin", user_id="admin", tier="trusted", role="admin", created_at=0.0)
_bearer = HTTPBearer(auto_error=False, description="An API key from POST /admin/keys, or the admin key.")
# LiteLLM's Generic Guardrail API sends the `api_key` of its config in this header (docs/litellm.md).
API_KEY_HEADER = "x-api-key"
GUARDRAIL_KEY_HINT = f"'{API_KEY_HEADER}: <key>' or 'Authorization: Bearer <key>'"
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="A SafeServe API key, as LiteLLM's guardrail sends it."
)


async def get_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


async def get_timer(request: Request) -> StageTimer:
    return request.state.timer


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
TimerDep = Annotated[StageTimer, Depends(get_timer)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def has_bearer_token(authorization: str | None) -> bool:
    """Whether an Authorization header holds a token as `_bearer` reads one: 'Bearer <token>', any case."""
    scheme, token = get_authorization_scheme_param(authorization)
    return scheme.lower() == "bearer" and bool(token)


def _is_admin_key(gateway: Gateway, token: str) -> bool:
    admin_key = gateway.settings.admin_key
    return admin_key is not None and hmac.compare_digest(token.encode(), admin_key.get_secret_value().encode())


async def identify(gateway: Gateway, token: str) -> ApiKeyInfo | None:
    """Who a bearer token is: the admin identity, an active key, or None. Redis errors propagate."""
    if _is_admin_key(gateway, token):
        return ADMIN_IDENTITY
    return await gateway.keys.lookup(token)


async def authenticate(request: Request, gateway: GatewayDep, timer: TimerDep, credentials: Credentials) -> ApiKeyInfo:
    if credentials is None or not credentials.credentials:
        raise MissingApiKey()
    return await authenticate_token(request, gateway, timer, credentials.credentials)


async def authenticate_guardrail(
    request: Request,
    gateway: GatewayDep,
    timer: TimerDep,
    credentials: Credentials,
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiKeyInfo:
    """As `authenticate`, for the guardrail route: the key in `x-api-key` (how LiteLLM sends it), else a bearer."""
    token = api_key or (credentials.credentials if credentials else None)
    if not token:
        raise MissingApiKey(GUARDRAIL_KEY_HINT)
    return await authenticate_token(request, gateway, timer, token)


async def authenticate_token(request: Request, gateway: Gateway, timer: StageTimer, token: str) -> ApiKeyInfo:
    with timer.stage("auth"):
        try:
            key = await identify(gateway, token)
        except RedisError as exc:
            INFRA_ERRORS.inc(tags={"component": "redis", "outcome": "fail_closed"})
            logger.error("key lookup failed: %s", exc.__class__.__name__)
            raise ServiceUnavailable(
                "Authentication is temporarily unavailable; please retry.", code="auth_unavailable"
            ) from exc
    if key is None:
        raise NotAuthenticated("Incorrect or revoked API key provided.")
    request.state.key = key  # for the request's log line
    return key


CurrentKey = Annotated[ApiKeyInfo, Depends(authenticate)]
GuardrailKey = Annotated[ApiKeyInfo, Depends(authenticate_guardrail)]


def require_role(*roles: str):
    async def check(key: CurrentKey) -> ApiKeyInfo:
        if key.role not in roles:
            raise PermissionDenied(f"This route needs one of the roles: {', '.join(roles)}.")
        return key

    return check


AdminKey = Annotated[ApiKeyInfo, Depends(require_role("admin"))]
ReviewerKey = Annotated[ApiKeyInfo, Depends(require_role("admin", "reviewer"))]


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    route: str
    key: ApiKeyInfo
    timer: StageTimer
    state: Any  # the request's Starlette state; `decision` set here is read by the metrics middleware


async def request_context(request: Request, key: CurrentKey, timer: TimerDep) -> RequestContext:
    return RequestContext(
        request_id=request.state.request_id, route=request.url.path, key=key, timer=timer, state=request.state
    )


Context = Annotated[RequestContext, Depends(request_context)]
