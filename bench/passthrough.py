"""The floor for one Python hop: a minimal FastAPI + httpx pass-through to an OpenAI-compatible server, with no
checks at all. bench/gateway.py measures SafeServe beside it.

    python -m bench.passthrough --port 8102 --upstream http://127.0.0.1:8101/v1
"""

from __future__ import annotations

import argparse

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse


def make_app(upstream: str) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream, timeout=60, limits=httpx.Limits(max_connections=256))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.body()
        headers = {"content-type": "application/json"}
        upstream_request = client.build_request("POST", "/chat/completions", content=body, headers=headers)
        answer = await client.send(upstream_request, stream=True)
        if answer.headers.get("content-type", "").startswith("text/event-stream"):

            async def relay():
                try:
                    async for chunk in answer.aiter_raw():
                        yield chunk
                finally:
                    await answer.aclose()

            return StreamingResponse(relay(), status_code=answer.status_code, media_type="text/event-stream")
        content = await answer.aread()
        return Response(content, status_code=answer.status_code, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's base URL, ending in /v1")
    args = parser.parse_args()
    uvicorn.run(make_app(args.upstream), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
