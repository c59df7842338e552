"""Rate limits and quotas, enforced atomically in Redis by one server-side script per request.

Requests per minute and tokens per minute are GCRA limits (the generic cell rate algorithm, as in
redis-cell): each stores one timestamp, the theoretical arrival time, so a limit of N per minute lets N
requests through at once and then one every 60/N seconds, whatever the number of ingress replicas, with no
window edge where 2N can slip through. The daily token quota is a counter per UTC day.

Tokens are reserved when a request is admitted (its prompt plus its max_tokens, as OpenAI counts them) and
the unused part is given back when the answer is complete (`settle`), so the limit holds even while many
long generations run at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from serve_app.config import Limits

KEY = "safeserve:ratelimit:{}:{}"

# Time is Redis's own (TIME), so ingress replicas with skewed clocks still share one timeline.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: requests TAT, tokens TAT, day counter. ARGV: rpm, tpm, tpd, tokens. A limit of 0 means unlimited.
# Returns, per limit (requests, tokens, day): allowed (1/0), remaining, ms until the limit is whole again, ms
# until this request could pass (0 when it passes).
_ADMIT = (
    _NOW
    + """
local tokens = tonumber(ARGV[4])
local day_left = 86400000 - now % 86400000

local function gcra(key, limit, cost)
  if limit <= 0 then return {1, -1, 0, 0, nil} end
  local interval = 60000 / limit
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - 60000
  if allow_at > now then
    return {0, math.max(0, math.floor((now - (tat - 60000)) / interval)), math.ceil(tat - now),
            math.ceil(allow_at - now), nil}
  end
  return {1, math.floor((now - (new_tat - 60000)) / interval), math.ceil(new_tat - now), 0, new_tat}
end

local requests = gcra(KEYS[1], tonumber(ARGV[1]), 1)
local minute = gcra(KEYS[2], tonumber(ARGV[2]), tokens)
local day = {1, -1, 0, 0}
local quota = tonumber(ARGV[3])
if quota > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or 0)
  local reset = day_left
  if used + tokens > quota then
    day = {0, math.max(0, quota - used), reset, reset}
  else
    day = {1, quota - used - tokens, reset, 0}
  end
end

if requests[1] == 1 and minute[1] == 1 and day[1] == 1 then
  if requests[5] then redis.call('SET', KEYS[1], requests[5], 'PX', 60000) end
  if minute[5] then redis.call('SET', KEYS[2], minute[5], 'PX', 60000 + math.ceil(minute[5] - now)) end
  if quota > 0 then
    redis.call('INCRBY', KEYS[3], tokens)
    redis.call('PEXPIRE', KEYS[3], day_left + 60000)
  end
end
return {requests[1], requests[2], requests[3], requests[4],
        minute[1], minute[2], minute[3], minute[4],
        day[1], day[2], day[3], day[4]}
"""
)

# KEYS: tokens TAT, day counter. ARGV: tpm, tokens to give back.
_SETTLE = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
local back = tonumber(ARGV[2])
if limit > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]))
  if tat then
    local new_tat = math.max(now, tat - back * 60000 / limit)
    redis.call('SET', KEYS[1], new_tat, 'PX', 60000 + math.ceil(new_tat - now))
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  local left = redis.call('DECRBY', KEYS[2], back)
  if left < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
end
return 1
"""
)


@dataclass(frozen=True)
class LimitState:
    name: str  # "requests", "tokens" or "tokens-day"
    limit: int | None
    remaining: int
    reset_ms: int
    retry_ms: int

    @property
    def allowed(self) -> bool:
        return self.retry_ms == 0


@dataclass(frozen=True)
class Admission:
    requests: LimitState
    tokens: LimitState
    day: LimitState
    reserved_tokens: int

    @property
    def refused(self) -> LimitState | None:
        """The limit that refuses this request (the daily quota first: waiting a minute does not help)."""
        for state in (self.day, self.requests, self.tokens):
            if state.limit is not None and not state.allowed:
                return state
        return None

    def headers(self) -> dict[str, str]:
        """OpenAI's rate-limit headers (and the daily quota's, named alike) for the limits that are set."""
        headers = {}
        for state in (self.requests, self.tokens, self.day):
            if state.limit is not None:
                headers[f"x-ratelimit-limit-{state.name}"] = str(state.limit)
                headers[f"x-ratelimit-remaining-{state.name}"] = str(state.remaining)
                headers[f"x-ratelimit-reset-{state.name}"] = duration(state.reset_ms)
        return headers


def duration(ms: int) -> str:
    """A reset time as OpenAI writes it: "1s", "6m0s", "1h2m3s", "250ms"."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = math.ceil(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


class RateLimiter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)

    async def erase(self, key_id: str) -> int:
        """Drop a key's counters (its windows and daily quotas)."""
        names = [name async for name in self.redis.scan_iter(match=KEY.format(key_id, "*"), count=500)]
        return await self.redis.delete(*names) if names else 0

    @staticmethod
    def _keys(key_id: str, now_ms: int) -> list[str]:
        # The day counter's name comes from this replica's clock, its expiry from Redis's: at worst a request
        # in the last instant of a UTC day counts on the next.
        day = time.strftime("%Y%m%d", time.gmtime(now_ms / 1000))
        return [KEY.format(key_id, "requests"), KEY.format(key_id, "tokens"), KEY.format(key_id, f"day:{day}")]

    async def admit(self, key_id: str, limits: Limits, tokens: int) -> Admission:
        """Count one request of `tokens` (prompt + max completion) against the key's limits, atomically; a
        refused request counts against nothing."""
        now_ms = int(time.time() * 1000)
        values = [limits.requests_per_minute or 0, limits.tokens_per_minute or 0, limits.tokens_per_day or 0]
        raw = await self._admit(keys=self._keys(key_id, now_ms), args=[*values, tokens])
        states = [
            LimitState(name, limit or None, int(raw[i + 1]), int(raw[i + 2]), int(raw[i + 3]))
            for name, limit, i in zip(("requests", "tokens", "tokens-day"), values, (0, 4, 8), strict=True)
        ]
        return Admission(*states, reserved_tokens=tokens)

    async def settle(self, key_id: str, limits: Limits, admission: Admission, used_tokens: int) -> None:
        """Give back what was reserved and not used (never more)."""
        back = max(0, admission.reserved_tokens - used_tokens)
        if back == 0:
            return
        now_ms = int(time.time() * 1000)
        keys = self._keys(key_id, now_ms)
        await self._settle(keys=[keys[1], keys[2]], args=[limits.tokens_per_minute or 0, back])
