"""Per-stage latency through a running gateway, and its overhead over calling the model directly.

    python -m bench.latency [--url http://127.0.0.1:8000] [-n 20] [--max-tokens 32] [--direct]
    python -m bench.latency --moderations [-n 200]

Reads each response's `Server-Timing` header (auth, patterns, classify, generate, moderate, total), prints
p50/p95 per stage and the gateway's overhead (server total minus generation), and writes them to
bench/results/latency.json. With --direct it also loads the default model in this process with the same
Generator config and runs each prompt there right after the gateway did: `overhead_vs_direct` is the
client-side time minus that direct time.
With --moderations it sends `POST /v1/moderations` one text at a time instead: answers of the served model of
about 60 words (from the output evaluation set), and reports the client's p50/p95 beside the server's stages,
written to bench/results/latency_moderations.json.
A key is taken from SAFESERVE_API_KEY, or created with the admin key (SAFESERVE_ADMIN_KEY or
.safeserve/admin_key).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import httpx

from classifiers.paths import home_dir
from serve_app.serve_config import app_config, load_serve_config

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "What is the capital of France?",
    "Give me one tip for writing clear emails.",
    "Name a fruit that is yellow.",
    "What does a thermometer measure?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def parse_server_timing(header: str) -> dict[str, float]:
    stages = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            stages[name] = float(duration)
    return stages


def api_key(url: str) -> str:
    if key := os.environ.get("SAFESERVE_API_KEY"):
        return key
    admin = os.environ.get("SAFESERVE_ADMIN_KEY") or (home_dir() / "admin_key").read_text().strip()
    response = httpx.post(
        f"{url}/admin/keys", json={"user_id": "bench", "tier": "trusted"}, headers={"Authorization": f"Bearer {admin}"}
    )
    response.raise_for_status()
    return response.json()["key"]


class DirectModel:
    """The default model with the same backend, config and steering, in this process, with no gateway."""

    def __init__(self) -> None:
        from deployments.transformers_backend import TransformersBackend

        self.config = app_config(load_serve_config(ROOT / "configs" / "local.yaml")).generator
        self.backend = TransformersBackend(self.config)

    def time_ms(self, prompt: str, max_tokens: int) -> float:
        from classifiers.steering import steer
        from deployments.generation import SamplingParams

        messages = steer([{"role": "user", "content": prompt}], self.config.steering)
        start = time.perf_counter()
        self.backend.generate(messages, SamplingParams(max_tokens=max_tokens))
        return (time.perf_counter() - start) * 1000


def measure(url: str, key: str, n: int, max_tokens: int, model: str, direct: DirectModel | None) -> list[dict]:
    """Sequential requests; with a direct model, each prompt also runs there right after, so that drift in
    the machine's speed affects both sides alike."""
    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        for i in range(n):
            prompt = PROMPTS[i % len(PROMPTS)]
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
            start = time.perf_counter()
            response = client.post("/v1/chat/completions", json=body)
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            row = parse_server_timing(response.headers["server-timing"])
            row["client_total"] = elapsed
            row["completion_tokens"] = response.json()["usage"]["completion_tokens"]
            if direct is not None:
                row["direct_model"] = direct.time_ms(prompt, max_tokens)
                row["overhead_vs_direct"] = elapsed - row["direct_model"]
            rows.append(row)
    return rows


def sixty_word_answers(n: int) -> list[str]:
    """Up to n of the served model's answers, each cut to its first 60 words (the target's text)."""
    from classifiers.paths import models_dir

    lines = (models_dir() / "eval" / "output.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    answers = [" ".join(t.split()[:60]) for t in texts if len(t.split()) >= 60][:n]
    return [answers[i % len(answers)] for i in range(n)]


def measure_moderations(url: str, key: str, n: int) -> list[dict]:
    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for text in [*sixty_word_answers(10), *sixty_word_answers(n)][: n + 10]:
            start = time.perf_counter()
            response = client.post("/v1/moderations", json={"input": text})
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            row = parse_server_timing(response.headers["server-timing"])
            row["client_total"] = elapsed
            rows.append(row)
    return rows[10:]  # the first ten warm the connection and the replicas


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    stages = sorted({name for row in rows for name in row})
    summary = {}
    for stage in stages:
        values = [row[stage] for row in rows if stage in row]
        summary[stage] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)}
    overhead = [row["total"] - row.get("generate", 0.0) for row in rows if "total" in row]
    summary["gateway_overhead"] = {
        "p50": percentile(overhead, 0.5),
        "p95": percentile(overhead, 0.95),
        "n": len(overhead),
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--model", default="safeserve-smollm2")
    parser.add_argument("--direct", action="store_true", help="also time the model called directly in process")
    parser.add_argument("--moderations", action="store_true", help="time POST /v1/moderations on 60-word answers")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    if args.moderations:
        rows = measure_moderations(args.url, api_key(args.url), args.n)
        out = args.out or ROOT / "bench" / "results" / "latency_moderations.json"
        report = {"url": args.url, "n": args.n, "route": "/v1/moderations", "stages_ms": summarise(rows)}
    else:
        direct = DirectModel() if args.direct else None
        rows = measure(args.url, api_key(args.url), args.n, args.max_tokens, args.model, direct)
        out = args.out or ROOT / "bench" / "results" / "latency.json"
        report = {"url": args.url, "n": args.n, "max_tokens": args.max_tokens, "stages_ms": summarise(rows)}
    summary = report["stages_ms"]

    print(f"{'stage':<18}{'p50 ms':>10}{'p95 ms':>10}")
    for stage, values in summary.items():
        if stage != "completion_tokens":
            print(f"{stage:<18}{values['p50']:>10.1f}{values['p95']:>10.1f}")
    if not args.moderations:
        print(f"mean completion tokens: {statistics.mean(r['completion_tokens'] for r in rows):.1f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
