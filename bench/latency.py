"""Per-stage latency through a running gateway, and its overhead over calling the model directly.

    python -m bench.latency [--url http://127.0.0.1:8000] [-n 20] [--max-tokens 32] [--direct]

Reads each response's `Server-Timing` header (auth, patterns, classify, generate, moderate, total), prints
p50/p95 per stage, and writes them to bench/results/latency.json. With --direct it also loads the default
model in this process with the same Generator config and times the same prompts, for the overhead figure.
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


def through_gateway(url: str, key: str, n: int, max_tokens: int, model: str) -> list[dict[str, float]]:
    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        for i in range(n):
            body = {
                "model": model,
                "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                "max_tokens": max_tokens,
            }
            start = time.perf_counter()
            response = client.post("/v1/chat/completions", json=body)
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            row = parse_server_timing(response.headers["server-timing"])
            row["client_total"] = elapsed
            row["completion_tokens"] = response.json()["usage"]["completion_tokens"]
            rows.append(row)
    return rows


def direct(n: int, max_tokens: int) -> list[float]:
    """The same prompts through the same backend and steering, in this process, with no gateway."""
    from classifiers.steering import steer
    from deployments.generation import SamplingParams
    from deployments.transformers_backend import TransformersBackend

    config = app_config(load_serve_config(ROOT / "configs" / "local.yaml")).generator
    backend = TransformersBackend(config)
    timings = []
    for i in range(n):
        messages = steer([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], config.steering)
        start = time.perf_counter()
        backend.generate(messages, SamplingParams(max_tokens=max_tokens))
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    stages = sorted({name for row in rows for name in row})
    summary = {}
    for stage in stages:
        values = [row[stage] for row in rows if stage in row]
        summary[stage] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)}
    overhead = [row["total"] - row.get("generate", 0.0) for row in rows]
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
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency.json")
    args = parser.parse_args()

    rows = through_gateway(args.url, api_key(args.url), args.n, args.max_tokens, args.model)
    summary = summarise(rows)
    report = {"url": args.url, "n": args.n, "max_tokens": args.max_tokens, "stages_ms": summary}
    if args.direct:
        direct_ms = direct(args.n, args.max_tokens)
        report["direct_model_ms"] = {"p50": percentile(direct_ms, 0.5), "p95": percentile(direct_ms, 0.95)}
        report["overhead_vs_direct_ms"] = {
            "p50": summary["client_total"]["p50"] - report["direct_model_ms"]["p50"],
        }

    print(f"{'stage':<18}{'p50 ms':>10}{'p95 ms':>10}")
    for stage, values in summary.items():
        if stage != "completion_tokens":
            print(f"{stage:<18}{values['p50']:>10.1f}{values['p95']:>10.1f}")
    if args.direct:
        print(f"{'direct model':<18}{report['direct_model_ms']['p50']:>10.1f}{report['direct_model_ms']['p95']:>10.1f}")
        overhead = report["overhead_vs_direct_ms"]["p50"]
        print(f"gateway overhead over the direct model (client p50 - direct p50): {overhead:.1f} ms")
    print(f"mean completion tokens: {statistics.mean(r['completion_tokens'] for r in rows):.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
