"""Admission of a model request, after authentication and before any safety layer: suspension, the capability
gate, then the rate limits and quotas. What it decides (which policy, what was reserved) travels with the
request as an `Access`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.exceptions import RedisError

from deployments.logs import get_logger
from serve_app.capabilities import check_tools
from serve_app.config import Limits, TierConfig
from serve_app.deps import RequestContext
from serve_app.errors import (
    CapabilityNotAllowed,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    UserSuspended,
)
from serve_app.gateway import Gateway
from serve_app.limits import Admission, duration
from serve_app.metrics import INFRA_ERRORS, LIMIT_REFUSALS

logger = get_logger("access")


@dataclass(frozen=True)
class Access:
    tier: TierConfig
    limits: Limits
    strict: bool  # decide this request on the strict policy
    admission: Admission | None  # None: no limit is set, or the limiter failed open
    prompt_tokens: int  # counted with the served model's tokenizer

    def headers(self) -> dict[str, str]:
        return self.admission.headers() if self.admission else {}


def _tier(gateway: Gateway, ctx: RequestContext) -> TierConfig:
    tier = gateway.config.tiers.get(ctx.key.tier)
    if tier is None:
        # A key whose tier was removed from the config: refuse rather than guess its limits.
        raise CapabilityNotAllowed(
            f"This key's tier '{ctx.key.tier}' is not configured on this gateway; ask an admin for a new key.",
            code="unknown_tier",
        )
    return tier


async def admit(
    gateway: Gateway,
    ctx: RequestContext,
    texts: list[str],
    max_tokens: int,
    tools: list[str] | None = None,
    reserve: bool = True,
) -> Access:
    """Refuse a suspended user (403), a tool the tier does not allow (403) or a request over a limit (429);
    else reserve its tokens (prompt + `max_tokens`) and say which policy applies. `reserve=False` only says
    which policy applies: for a check of an answer, which belongs to a request already admitted."""
    tier = _tier(gateway, ctx)
    config = gateway.config
    strict = config.safe_mode or tier.policy == "strict"
    if ctx.key.role != "admin":
        standing = await gateway.reputation.standing(ctx.key.user_id, config.reputation)
        policy = standing.policy(config.reputation, time.time())
        if policy == "suspended":
            until = datetime.fromtimestamp(standing.suspended_until, UTC).isoformat(timespec="seconds")
            LIMIT_REFUSALS.inc(tags={"limit": "suspended"})
            raise UserSuspended(
                f"This account is suspended until {until} after repeated policy violations.",
                suspended_until=until,
            )
        strict = strict or policy == "strict"
    if tools:
        check = check_tools(tier, tools)
        if check.forbidden:
            LIMIT_REFUSALS.inc(tags={"limit": "capability"})
            raise CapabilityNotAllowed(
                f"The tool(s) {', '.join(check.forbidden)} are not allowed for tier '{ctx.key.tier}'.",
                param="tools",
            )
        strict = strict or check.needs_strict_policy
    limits = tier.limits.merged(ctx.key.limits)
    prompt_tokens = gateway.tokens.count(texts)
    admission = await _reserve(gateway, ctx, limits, prompt_tokens + max_tokens) if reserve else None
    return Access(tier=tier, limits=limits, strict=strict, admission=admission, prompt_tokens=prompt_tokens)


async def _reserve(gateway: Gateway, ctx: RequestContext, limits: Limits, tokens: int) -> Admission | None:
    if limits == Limits():
        return None
    for limit in (limits.tokens_per_minute, limits.tokens_per_day):
        if limit is not None and tokens > limit:
            raise InvalidRequest(
                f"This request needs up to {tokens} tokens (prompt + max_tokens), more than the limit of {limit}; "
                "lower max_tokens or shorten the prompt.",
                param="max_tokens",
                code="request_too_large",
            )
    try:
        admission = await gateway.limiter.admit(ctx.key.id, limits, tokens)
    except RedisError as exc:
        if gateway.config.fail_mode("rate_limiter") == "fail_open":
            INFRA_ERRORS.inc(tags={"component": "rate_limiter", "outcome": "fail_open"})
            logger.warning("rate limiter unavailable (%s): failing open as configured", exc.__class__.__name__)
            return None
        INFRA_ERRORS.inc(tags={"component": "rate_limiter", "outcome": "fail_closed"})
        logger.error("rate limiter unavailable (%s): failing closed", exc.__class__.__name__)
        raise ServiceUnavailable(
            "Rate limiting is temporarily unavailable; please retry.", code="rate_limiter_unavailable"
        ) from exc
    refused = admission.refused
    if refused is None:
        return admission
    LIMIT_REFUSALS.inc(tags={"limit": refused.name})
    retry_after = str(max(1, -(-refused.retry_ms // 1000)))
    headers = {**admission.headers(), "Retry-After": retry_after}
    if refused.name == "tokens-day":
        raise QuotaExceeded(
            f"This key's daily token quota ({refused.limit}) is used up; it resets in {duration(refused.retry_ms)}.",
            headers=headers,
        )
    error = RateLimited(
        f"Rate limit reached: {refused.limit} {refused.name} per minute for this key. "
        f"Please try again in {duration(refused.retry_ms)}.",
        headers=headers,
    )
    error.error_type = refused.name
    raise error


async def settle(gateway: Gateway, ctx: RequestContext, access: Access, used_tokens: int) -> None:
    """Give back the tokens reserved and not used; a failure here only leaves the reservation standing."""
    if access.admission is None:
        return
    try:
        await gateway.limiter.settle(ctx.key.id, access.limits, access.admission, used_tokens)
    except RedisError as exc:
        INFRA_ERRORS.inc(tags={"component": "rate_limiter", "outcome": "settle_failed"})
        logger.warning("token settlement failed: %s", exc.__class__.__name__)
