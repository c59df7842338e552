"""Streaming cost: time to first token and tokens/s, bare backend against the gateway with streaming
moderation, for hold-back windows K.

    python -m bench.streaming [-n 3] [--ks 4,8,16] [--tokens 200] [--delay-ms 5] [--model-tokens 48]

Two backends:
- `openai_upstream`: harness/scripted_upstream.py, a real OpenAI-compatible server on loopback streaming one word
  every `--delay-ms` (a word of the script is a few tokens); bare = a client streaming from it directly;
- `transformers`: the default model (SmolLM2-135M on this CPU); bare = the Generator deployment's stream
  called through its handle, no ingress and no moderation.
Through the gateway each request is a real chat completion over HTTP (auth, limits, input screening before the
first byte, then the Moderator every K tokens with K tokens held back). Tokens are counted in the text received,
with the served model's tokenizer (the ingress's `tokenizer_path`), whatever the size of the chunks. Starts its
own redis-server and Ray. Prints the figures and writes them to bench/results/streaming.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import httpx

from harness.processes import RedisServer, app_deploy_config, deploy, deployment_config, free_port, wait_ready
from harness.scripted_upstream import ScriptedUpstream
from serve_app.config import IngressConfig
from serve_app.tokens import TokenCounter

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "streaming.json"
ADMIN_KEY = "ss-admin-bench-streaming"


@cache
def token_counter() -> TokenCounter:
    return TokenCounter(IngressConfig().tokenizer_path)


def timed_stream(chunks: Iterator[str], start: float) -> dict:
    """Time to first token and to the whole answer (ms, from `start`, when the request was sent) and tokens/s
    over the whole answer, which is what a reader of the stream gets (a held-back window arrives in bursts, so
    the rate between the first and the last token alone would flatter it)."""
    first, text = None, ""
    for chunk in chunks:
        text += chunk
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    count = token_counter().length(text)
    return {
        "ttft_ms": (first - start) * 1000 if first else None,
        "total_ms": (end - start) * 1000,
        "tokens_per_s": count / (end - start),
        "tokens": count,
    }


def sse_contents(response: httpx.Response) -> Iterator[str]:
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            delta = json.loads(line[6:])["choices"][0].get("delta") or {}
            if delta.get("content"):
                yield delta["content"]


def stream_chat(url: str, key: str, model: str, prompt: str, max_tokens: int) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "stream": True}
    start = time.perf_counter()
    with httpx.stream(
        "POST", f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=300
    ) as response:
        response.raise_for_status()
        return timed_stream(sse_contents(response), start)


def median(runs: list[dict]) -> dict:
    return {
        "ttft_ms": round(statistics.median(r["ttft_ms"] for r in runs), 1),
        "total_ms": round(statistics.median(r["total_ms"] for r in runs), 1),
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 1),
        "tokens": runs[0]["tokens"],
    }


def bare_generator(prompt: str, max_tokens: int) -> dict:
    """The Generator deployment's own stream, through its handle (inside a fresh event loop)."""
    from ray.serve.handle import DeploymentHandle

    from deployments.generation import SamplingParams

    async def run() -> dict:
        handle = DeploymentHandle("Generator", app_name="safeserve").options(stream=True)
        messages = [{"role": "user", "content": prompt}]
        start = time.perf_counter()
        first, text = None, ""
        async for piece in handle.stream.remote(messages, SamplingParams(max_tokens)):
            if isinstance(piece, str):
                text += piece
                first = first or time.perf_counter()
        end = time.perf_counter()
        count = token_counter().length(text)
        return {
            "ttft_ms": (first - start) * 1000,
            "total_ms": (end - start) * 1000,
            "tokens_per_s": count / (end - start),
            "tokens": count,
        }

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--ks", default="4,8,16", help="hold-back windows K to measure")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per upstream answer")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="the scripted upstream's pause per token")
    parser.add_argument("--model-tokens", type=int, default=48, help="tokens per answer of the default model")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]

    import ray
    from ray import serve

    upstream = ScriptedUpstream(delay_s=args.delay_ms / 1000).start()
    redis_server = RedisServer(Path(tempfile.mkdtemp(prefix="safeserve-bench-")))
    redis_server.start()
    os.environ.update(SAFESERVE_REDIS_URL=redis_server.url, SAFESERVE_ADMIN_KEY=ADMIN_KEY)
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    results: dict = {"machine": f"{os.cpu_count()} CPU cores", "runs": args.n, "ks": ks}
    try:
        ray.init(include_dashboard=False, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        prompt = "Tell me a long story about a lighthouse."

        results["openai_upstream"] = {
            "tokens": args.tokens,
            "delay_ms": args.delay_ms,
            "bare": median([stream_chat(upstream.url, "none", "m", prompt, args.tokens) for _ in range(args.n)]),
        }
        for backend in ("openai_upstream", "transformers"):
            max_tokens = args.tokens if backend == "openai_upstream" else args.model_tokens
            config = app_deploy_config()
            generator = deployment_config(config, "Generator")["user_config"]
            if backend == "openai_upstream":
                generator.update(backend="openai_upstream", upstream={"url": upstream.url, "model": "scripted"})
            generator["max_new_tokens"] = max(generator.get("max_new_tokens", 256), max_tokens)
            ingress = deployment_config(config, "Ingress")["user_config"]
            ingress["tiers"]["trusted"]["max_tokens"] = max_tokens
            deploy(config)
            wait_ready(gateway)
            key = httpx.post(
                f"{gateway}/admin/keys",
                json={"user_id": "bench", "tier": "trusted"},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ).json()["key"]
            section = results.setdefault(backend, {})
            if backend == "transformers":
                bare_prompt = "Write a short story about a lighthouse keeper."
                section["tokens"] = max_tokens
                bare_generator(bare_prompt, 4)  # warm-up
                section["bare"] = median([bare_generator(bare_prompt, max_tokens) for _ in range(args.n)])
                prompt_for_backend = bare_prompt
            else:
                prompt_for_backend = prompt
            for k in ks:
                ingress["stream_moderation"] = {"holdback_tokens": k, "check_every_tokens": k}
                deploy(config)
                stream_chat(f"{gateway}/v1", key, ingress["served_model"], prompt_for_backend, 4)  # warm-up
                runs = [
                    stream_chat(f"{gateway}/v1", key, ingress["served_model"], prompt_for_backend, max_tokens)
                    for _ in range(args.n)
                ]
                section[f"gateway_k{k}"] = median(runs)
            print(json.dumps({backend: section}, indent=2), flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
        redis_server.stop()
        upstream.stop()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
