"""Decision records: one structured JSON record per safety decision, to the log; the non-allow ones
(incidents) also to a Redis stream that the admin API reads (`GET /admin/incidents`).

A record never holds an API key; the prompt is stored only as a SHA-256 hash and a short redacted excerpt
unless the policy says `store_prompt: true`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from classifiers.redaction import excerpt
from classifiers.verdict import Verdict
from deployments.audit import INCIDENT_STREAM
from deployments.logs import get_logger
from serve_app.config import IncidentConfig
from serve_app.metrics import INFRA_ERRORS

logger = get_logger("incidents")


def incident_record(
    verdict: Verdict, *, request_id: str, user_id: str, key_id: str, route: str, text: str, config: IncidentConfig
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ts": time.time(),
        "request_id": request_id,
        "user_id": user_id,
        "key_id": key_id,
        "route": route,
        "layer": verdict.layer,
        "category": verdict.category,
        "score": round(verdict.score, 4),
        "action": verdict.action,
        "reasons": list(verdict.reasons),
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "excerpt": excerpt(text, config.excerpt_chars),
    }
    if config.store_prompt:
        record["text"] = text
    return record


class IncidentRecorder:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    def log(self, record: dict[str, Any]) -> str:
        """One log line per decision: `incident` for the non-allow ones, `decision` otherwise, with the record's
        fields at the top level of Serve's JSON line (which adds the request id itself). Returns the record as
        JSON, for the stream."""
        message = "decision" if record["action"] == "allow" and not record["reasons"] else "incident"
        # Logs keep no text: never the full prompt (`store_prompt` applies to the Redis record only), and the
        # redacted excerpt only for incidents; an allowed request is identified by its hash.
        dropped = {"request_id", "text"} | ({"excerpt"} if message == "decision" else set())
        fields = {("http_route" if k == "route" else k): v for k, v in record.items() if k not in dropped}
        logger.info(message, extra={"ray_serve_extra_fields": fields})
        return json.dumps(record, default=str)

    async def record(self, record: dict[str, Any], config: IncidentConfig) -> None:
        line = self.log(record)
        try:
            await self.redis.xadd(INCIDENT_STREAM, {"record": line}, maxlen=config.stream_maxlen, approximate=True)
        except RedisError:
            # The log line above already holds the record; the stream copy is for the admin API.
            INFRA_ERRORS.inc(tags={"component": "redis", "outcome": "incident_logged_only"})
            logger.exception("could not append incident %s to Redis", record["request_id"])

    async def _pages(self, newest_first: bool, page_size: int = 1000) -> AsyncIterator[list[tuple[str, dict]]]:
        """The stream's records as (entry id, record) pages, newest or oldest first."""
        cursor = "+" if newest_first else "-"
        while True:
            if newest_first:
                page = await self.redis.xrevrange(INCIDENT_STREAM, max=cursor, count=page_size)
            else:
                page = await self.redis.xrange(INCIDENT_STREAM, min=cursor, count=page_size)
            if not page:
                return
            yield [(entry, json.loads(fields["record"])) for entry, fields in page]
            cursor = f"({page[-1][0]}"

    async def recent(self, limit: int, user_id: str | None = None, scan: int = 10_000) -> list[dict[str, Any]]:
        """Newest first; with `user_id`, that user's among the newest `scan` records."""
        found: list[dict[str, Any]] = []
        seen = 0
        async for page in self._pages(newest_first=True):
            page = page[: scan - seen]
            seen += len(page)
            found.extend(record for _, record in page if user_id is None or record.get("user_id") == user_id)
            if len(found) >= limit or seen >= scan:
                break
        return found[:limit]

    async def erase_user(self, user_id: str) -> int:
        """Delete a user's incident records from the stream (the log lines age out with the logs)."""
        erased = 0
        async for page in self._pages(newest_first=False):
            mine = [entry for entry, record in page if record.get("user_id") == user_id]
            if mine:
                erased += await self.redis.xdel(INCIDENT_STREAM, *mine)
        return erased
