"""A small OpenAI-compatible server that answers with scripted text: the upstream the tests guard and the
streaming bench measures (a real HTTP server on loopback, not a mock inside the gateway).

The last user message picks the script by its topic, in plain words that no input check minds: `seaside`
(the unsafe script), `harbour` (the script with a passage the tests' Moderator sends to review in a `hold`
category), `canal` (the script the shipped policy blocks), `market` (fails twice with 503, then the clean
script), `lighthouse` (1,000 words), `postcard` (an answer with an email address in it), `forecast` (a call to
`get_weather`), `parcel` (a call to `send_email`), `tundra` (the clean script, ending with a finish reason
outside OpenAI's schema, `eos_token`, and no `usage`, as some servers send), `umbrella` and `drizzle` (calls to
`get_weather` whose arguments carry an email address and an AWS access key), `glacier` (stalls for `stall_s`:
before answering, or after the first chunk of a stream), `pier` (the clean opening, a passage the fault tests'
Moderator sends to review, then 1,000 words); any other prompt gets the clean script. A topic of `FAULTS` breaks
the answer as an upstream or a proxy in front of it can (the fault tests, tests/e2e/test_faults.py). Streams send
`words_per_chunk` words per chunk (one by default), `delay_s` apart, and a tool call as OpenAI streams one: its
id and name, then its arguments in fragments. Every request body is kept (unless `keep_requests` is off, as for
load tests), so a test can check exactly what the model server received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from harness.processes import ThreadedServer, free_port

CLEAN = [f"clean-{i:02d}" for i in range(1, 41)]
UNSAFE_PHRASE = "zebra unsafe passage"
# 16 clean words, the unsafe passage (3 words), then 21 more words of it: the whole tail is the unsafe span.
UNSAFE = [*CLEAN[:16], *UNSAFE_PHRASE.split(), *(f"unsafe-{i:02d}" for i in range(1, 22))]
UNSAFE_PASSAGE_END = 16 + len(UNSAFE_PHRASE.split())  # the index of the first word after the passage
HELD_PHRASE = "zebra held passage"
HELD = [*CLEAN[:16], *HELD_PHRASE.split(), *(f"held-{i:02d}" for i in range(1, 22))]
# What the shipped output policy itself blocks (a deny-list phrase of configs/*.yaml): the unsafe script for a
# gateway without the test session's rule for UNSAFE_PHRASE, such as `make run`.
PERSONA = [*CLEAN[:16], "DAN", "mode", "enabled:", *(f"unsafe-{i:02d}" for i in range(1, 22))]
MODEL = "scripted-upstream"


LONG = [f"word-{i:03d}" for i in range(1, 1001)]
REVIEW_PHRASE = "zebra review passage"
REVIEWED = [*CLEAN[:16], *REVIEW_PHRASE.split(), *LONG]
# Topic -> how the answer breaks. `noise`: SSE lines a client skips (comments, `id:`, `retry:`) between chunks;
# `garbage`: a line that is not JSON (a proxy's error page) after 4 chunks; `cut`: half a JSON chunk after 4
# chunks, then the connection ends (not streamed: half the answer's JSON); `unknown_event`: a named event that is
# not a chunk after 4 chunks; `no_done`: the chunks, then the connection ends without a finish reason or [DONE];
# `unsafe_then_garbage`: the unsafe script up to and including its unsafe passage, then a line that is not JSON.
FAULTS = {
    "heron": "noise",
    "badger": "garbage",
    "otter": "cut",
    "falcon": "unknown_event",
    "puffin": "no_done",
    "gannet": "unsafe_then_garbage",
}
GARBAGE = "data: <html><body>502 Bad Gateway</body></html>\n\n"
UNKNOWN_EVENT = 'event: ping\ndata: {"type": "ping"}\n\n'
NOISE = ": keep-alive\nid: 7\nretry: 1000\n\n"
EMAIL_ADDRESS = "ada.lovelace@example.org"
POSTCARD = ["Send", "it", "to", EMAIL_ADDRESS, "please."]
# Topic -> (tool name, arguments): the model answers with this call instead of text.
AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's own documentation example, not a live key
TOOL_CALLS = {
    "forecast": ("get_weather", '{"city": "Paris"}'),
    "parcel": ("send_email", '{"to": "ops"}'),
    "umbrella": ("get_weather", json.dumps({"city": "Paris", "notify": EMAIL_ADDRESS})),
    "drizzle": ("get_weather", json.dumps({"city": "Paris", "api_key": AWS_ACCESS_KEY})),
}


def last_user_text(messages: list[dict]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def script_for(messages: list[dict], clean: list[str] = CLEAN) -> list[str]:
    last = last_user_text(messages)
    if "seaside" in last or "gannet" in last:
        return UNSAFE
    if "pier" in last:
        return REVIEWED
    if "harbour" in last:
        return HELD
    if "postcard" in last:
        return POSTCARD
    if "canal" in last:
        return PERSONA
    return LONG if "lighthouse" in last else clean


def tool_call_for(messages: list[dict]) -> dict | None:
    last = last_user_text(messages)
    topic = next((topic for topic in TOOL_CALLS if topic in last), None)
    if topic is None:
        return None
    name, arguments = TOOL_CALLS[topic]
    return {
        "id": f"call_{uuid.uuid4().hex[:12]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


class ScriptedUpstream:
    def __init__(
        self,
        delay_s: float = 0.0,
        words_per_chunk: int = 1,
        stall_s: float = 3.0,
        port: int | None = None,
        clean: list[str] | None = None,
        keep_requests: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.clean = clean or CLEAN
        self.keep_requests = keep_requests  # off for load tests, where the bodies would only pile up
        self.delay_s = delay_s
        self.words_per_chunk = words_per_chunk
        self.stall_s = stall_s
        self.received: list[dict] = []
        self.streams_left = 0  # streams whose client (the gateway) closed them before their end
        self._flaky_failures = 0
        self.app = self._make_app()
        self._served = ThreadedServer(self.app, self.port, "the scripted upstream")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedUpstream:
        self._served.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._served.run()

    def stop(self) -> None:
        self._served.stop(10)

    def _make_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            if self.keep_requests:
                self.received.append(body)
            last = body["messages"][-1].get("content") or ""
            if "market" in last and self._flaky_failures < 2:
                self._flaky_failures += 1
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
            call = tool_call_for(body["messages"])
            script = [] if call else script_for(body["messages"], self.clean)
            words = script[: body.get("max_tokens") or 10_000]  # a word stands for a token here
            created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
            finish = "tool_calls" if call else "length" if len(words) < len(script) else "stop"
            bare = "tundra" in last  # a server's own finish reason, and no usage
            finish = "eos_token" if bare else finish
            stall = self.stall_s if "glacier" in last else 0.0
            fault = next((fault for topic, fault in FAULTS.items() if topic in last), None)
            if not body.get("stream"):
                await asyncio.sleep(stall)
                if fault == "cut":
                    half = f'{{"id": "{cid}", "object": "chat.completion", "choi'
                    return Response(half, media_type="application/json")
                message = {"role": "assistant", "content": None, "tool_calls": [call]} if call else None
                return {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": MODEL,
                    "choices": [
                        {
                            "index": 0,
                            "message": message or {"role": "assistant", "content": " ".join(words)},
                            "finish_reason": finish,
                        }
                    ],
                } | (
                    {}
                    if bare
                    else {
                        "usage": {"prompt_tokens": 20, "completion_tokens": len(words), "total_tokens": 20 + len(words)}
                    }
                )

            def event(delta: dict, finish_reason: str | None = None) -> str:
                chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
                return f"data: {json.dumps(chunk)}\n\n"

            def deltas() -> list[dict]:
                if call is None:
                    size = self.words_per_chunk
                    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
                    return [{"content": chunk if i == 0 else f" {chunk}"} for i, chunk in enumerate(chunks)]
                arguments = call["function"]["arguments"]
                head = {**call, "index": 0, "function": {"name": call["function"]["name"], "arguments": ""}}
                half = len(arguments) // 2
                fragments = (arguments[:half], arguments[half:])
                return [{"tool_calls": [head]}] + [
                    {"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in fragments
                ]

            async def events():
                finished = False
                try:
                    async for line in lines():
                        yield line
                    finished = True
                finally:
                    if not finished:
                        self.streams_left += 1

            async def lines():
                for i, delta in enumerate(deltas()):
                    if fault == "unsafe_then_garbage" and i == UNSAFE_PASSAGE_END:
                        yield GARBAGE
                        return
                    if i == 4 and fault in ("garbage", "cut", "unknown_event"):
                        if fault == "cut":
                            whole = event(delta)
                            yield whole[: len(whole) // 2]
                            return
                        yield GARBAGE if fault == "garbage" else UNKNOWN_EVENT
                    yield event(delta)
                    if fault == "noise":
                        yield NOISE
                    if self.delay_s or stall:
                        await asyncio.sleep(stall or self.delay_s)
                if fault == "no_done":
                    return
                yield event({}, finish)
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return app


def main() -> None:
    """Serve in the foreground, as a process of its own (bench/gateway.py measures gateways in front of it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answer", default=" ".join(CLEAN), help="the clean script's words")
    parser.add_argument("--words-per-chunk", type=int, default=1)
    args = parser.parse_args()
    upstream = ScriptedUpstream(
        port=args.port, clean=args.answer.split(), words_per_chunk=args.words_per_chunk, keep_requests=False
    )
    upstream.serve_forever()


if __name__ == "__main__":
    main()
