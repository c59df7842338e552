"""Per-user reputation in Redis: penalties for blocked attempts and rejected reviews, recovery with time and
clean traffic, the strict policy below one threshold and a temporary suspension below another.

The gateway's own uncertain calls must never add up to punishing a benign user (a load test of one-token
answers once filled the review queue, the review penalties put the user on the strict policy, its thresholds
blocked more, and the user was suspended). So each event's penalties are capped per window, and the events no
human or input check confirmed (`ReputationConfig.unconfirmed`: the Moderator's blocks and undecided reviews)
stop at `strict_below`: only the user's own refused requests and reviewer-confirmed violations suspend.

One hash per user (`safeserve:reputation:<user>`: score, updated_at, suspended_until, clean, and per capped
event the window's start and the points it took, `window:<event>` and `spent:<event>`). Recovery is
applied lazily, on the next read or write, so nothing has to run in the background: time restores
`recovery_per_hour`, and each clean request since the last change (the `clean` counter) `clean_request_bonus`.
Every change of the stored score is one server-side script, so concurrent requests on several ingress replicas
cannot lose an update, and it appends who, when, why and the standing before and after (recovery included) to
the audit stream in the same script.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from deployments.audit import AUDIT_STREAM
from serve_app.config import ReputationConfig
from serve_app.schemas.admin import Reputation

KEY = "safeserve:reputation:{}"
USERS = "safeserve:reputation:users"

# KEYS: reputation hash, audit stream, users set. ARGV: now (s), initial, recovery per hour, suspend_below,
# suspension seconds, delta, floor (-1: none), set (-1: none), suspension op ("keep", "clear" or an epoch),
# clean-request bonus, actor, action, reason, user, event ("" for none), the event's cap per window (-1: none),
# window seconds, the lowest score the event may leave (-1: none).
_UPDATE = """
local now = tonumber(ARGV[1])
local initial = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'score', 'updated_at', 'suspended_until', 'clean')
local score = tonumber(h[1]) or initial
local updated = tonumber(h[2]) or now
local suspended = tonumber(h[3]) or 0
local clean = tonumber(h[4]) or 0
if score < initial then
  local recovered = (now - updated) / 3600 * tonumber(ARGV[3]) + clean * tonumber(ARGV[10])
  score = math.min(initial, score + recovered)
end
local before_score, before_suspended = score, suspended
if tonumber(ARGV[8]) >= 0 then score = tonumber(ARGV[8]) end
local delta = tonumber(ARGV[6])
local event, cap = ARGV[15], tonumber(ARGV[16])
if delta < 0 and tonumber(ARGV[18]) >= 0 then
  delta = math.max(delta, math.min(0, tonumber(ARGV[18]) - score))
end
if delta < 0 and cap >= 0 then
  local start = tonumber(redis.call('HGET', KEYS[1], 'window:' .. event)) or 0
  local spent = tonumber(redis.call('HGET', KEYS[1], 'spent:' .. event)) or 0
  if now - start >= tonumber(ARGV[17]) then start, spent = now, 0 end
  delta = math.max(delta, -math.max(0, cap - spent))
  redis.call('HSET', KEYS[1], 'window:' .. event, tostring(start), 'spent:' .. event, tostring(spent - delta))
end
score = math.max(0, math.min(math.max(initial, score), score + delta))
if tonumber(ARGV[7]) >= 0 then score = math.max(score, tonumber(ARGV[7])) end
if ARGV[9] == 'clear' then suspended = 0 elseif ARGV[9] ~= 'keep' then suspended = tonumber(ARGV[9]) end
if delta < 0 and score < tonumber(ARGV[4]) and suspended <= now then suspended = now + tonumber(ARGV[5]) end
redis.call('HSET', KEYS[1], 'score', tostring(score), 'updated_at', tostring(now),
  'suspended_until', tostring(suspended), 'clean', '0')
redis.call('SADD', KEYS[3], ARGV[14])
redis.call('XADD', KEYS[2], '*', 'actor', ARGV[11], 'action', ARGV[12], 'target', 'user:' .. ARGV[14],
  'reason', ARGV[13], 'ts', tostring(now),
  'before', cjson.encode({score = before_score, suspended_until = before_suspended}),
  'after', cjson.encode({score = score, suspended_until = suspended}))
return {tostring(score), tostring(suspended), tostring(before_suspended)}
"""


@dataclass(frozen=True)
class Standing:
    score: float
    suspended_until: float | None
    newly_suspended: bool = False  # this change is what suspended the user

    def policy(self, config: ReputationConfig, now: float) -> str:
        if self.suspended_until and self.suspended_until > now:
            return "suspended"
        return "strict" if self.score < config.strict_below else "standard"


class ReputationStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._update = redis.register_script(_UPDATE)

    async def erase(self, user_id: str) -> bool:
        """Forget a user's score and standing; True if there was one."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(KEY.format(user_id))
            pipe.srem(USERS, user_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def standing(self, user_id: str, config: ReputationConfig) -> Standing:
        """The user's score now (recovery applied, nothing written)."""
        raw_score, raw_updated, raw_until, raw_clean = await self.redis.hmget(
            KEY.format(user_id), "score", "updated_at", "suspended_until", "clean"
        )
        now = time.time()
        score = float(raw_score) if raw_score is not None else config.initial
        if score < config.initial and raw_updated is not None:
            recovered = (now - float(raw_updated)) / 3600 * config.recovery_per_hour
            recovered += int(raw_clean or 0) * config.clean_request_bonus
            score = min(config.initial, score + recovered)
        until = float(raw_until) if raw_until else 0.0
        return Standing(score, until or None)

    async def view(self, user_id: str, config: ReputationConfig) -> Reputation:
        standing = await self.standing(user_id, config)
        now = time.time()
        return Reputation(
            user_id=user_id,
            score=round(standing.score, 3),
            policy=standing.policy(config, now),
            suspended_until=standing.suspended_until if standing.policy(config, now) == "suspended" else None,
            updated_at=now,
        )

    async def _change(
        self,
        user_id: str,
        config: ReputationConfig,
        *,
        actor: str,
        action: str,
        reason: str,
        delta: float = 0.0,
        floor: float = -1.0,
        set_to: float = -1.0,
        suspension: str = "keep",
        event: str = "",
    ) -> Standing:
        capped = delta < 0 and event in config.penalty_caps
        args = [
            f"{time.time():.3f}",
            config.initial,
            config.recovery_per_hour,
            config.suspend_below,
            config.suspension_minutes * 60,
            delta,
            floor,
            set_to,
            suspension,
            config.clean_request_bonus,
            actor,
            action,
            reason,
            user_id,
            event,
            config.penalty_caps[event] if capped else -1,
            config.penalty_window_minutes * 60,
            config.strict_below if delta < 0 and event in config.unconfirmed else -1,
        ]
        score, until, until_before = await self._update(keys=[KEY.format(user_id), AUDIT_STREAM, USERS], args=args)
        now = time.time()
        newly = float(until) > now and float(until) != float(until_before)
        return Standing(float(score), float(until) or None, newly_suspended=newly)

    async def penalize(
        self, user_id: str, config: ReputationConfig, event: str, category: str | None, actor: str, reason: str
    ) -> Standing:
        """Lower the score by the event's penalty for the category, within the event's cap for the window and, for
        an unconfirmed event, not below `strict_below`; a drop below `suspend_below` suspends."""
        penalty = config.penalty(event, category)
        return await self._change(
            user_id, config, actor=actor, action=f"reputation.{event}", reason=reason, delta=-penalty, event=event
        )

    async def restore(
        self, user_id: str, config: ReputationConfig, event: str, category: str | None, actor: str, reason: str
    ) -> Standing:
        """Give back the event's penalty for the category (a reviewer approved what it was charged for); the
        score never rises above `initial` this way."""
        penalty = config.penalty(event, category)
        return await self._change(
            user_id, config, actor=actor, action=f"reputation.{event}_approved", reason=reason, delta=penalty
        )

    async def reward_clean(self, user_id: str, config: ReputationConfig) -> None:
        """Count a clean, answered request: its bonus is recovery, applied lazily like time's and audited with the
        next change (the counter counts only while the score is below `initial`, and a change resets it)."""
        if config.clean_request_bonus > 0:
            await self.redis.hincrby(KEY.format(user_id), "clean", 1)

    async def reset(self, user_id: str, config: ReputationConfig, actor: str, reason: str) -> Standing:
        return await self._change(
            user_id, config, actor=actor, action="user.reset", reason=reason, set_to=config.initial, suspension="clear"
        )

    async def suspend(self, user_id: str, config: ReputationConfig, minutes: int, actor: str, reason: str) -> Standing:
        until = time.time() + minutes * 60
        return await self._change(
            user_id, config, actor=actor, action="user.suspend", reason=reason, suspension=f"{until:.3f}"
        )

    async def lift(self, user_id: str, config: ReputationConfig, actor: str, reason: str) -> Standing:
        """End a suspension; the user comes back on probation, at `suspend_below` at least (strict policy)."""
        return await self._change(
            user_id,
            config,
            actor=actor,
            action="user.lift",
            reason=reason,
            floor=config.suspend_below,
            suspension="clear",
        )
