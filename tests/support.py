"""Helpers for reading what the app answered and recorded: incidents, SSE streams."""

from __future__ import annotations

import json

from harness.processes import RedisServer


def incident_for(server: RedisServer, request_id: str) -> dict:
    """The incident recorded for a request (its x-request-id), among the newest 50."""
    records = [json.loads(fields["record"]) for _, fields in server.client().xrevrange("safeserve:incidents", count=50)]
    return next(record for record in records if record["request_id"] == request_id)


def sse_choices(text: str) -> list[dict]:
    """The first choice of every event of an OpenAI chat completion stream (its SSE body), in order."""
    return [
        json.loads(line[6:])["choices"][0]
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def streamed(text: str) -> tuple[str, str | None]:
    """The content a client received from a chat completion stream, and the stream's finish_reason."""
    content, finish = "", None
    for choice in sse_choices(text):
        content += choice["delta"].get("content") or ""
        finish = choice.get("finish_reason") or finish
    return content, finish
