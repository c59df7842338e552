"""What the gateway adds to a request, side by side in one run: a scripted OpenAI-compatible upstream alone, a
minimal FastAPI + httpx pass-through in front of it (the floor for one Python hop), and SafeServe as `make run`
starts it, guarding the same upstream with every layer on.

    python -m bench.gateway [-n 200] [--streams 100] [--clients 1,4,16,64] [--seconds 10] [--profile]

Targets are interleaved request by request (sequential and streams) and run by run (the sweep), so the
machine's drift touches them alike. Measures:
- sequential requests on a keep-alive connection: p50/p95 and what each target adds over the upstream's p50;
  SafeServe's `Server-Timing` stages beside them;
- streams: time to the first chunk with content;
- `POST /v1/moderations` of one 60-word text, one at a time (SafeServe targets only): p50/p95 and the `moderate`
  stage;
- a sweep with `hey` (Debian's HTTP load generator) at each client count: req/s, p50, p99, errors, and the
  CPU time each target's own processes spend per request (SafeServe: Ray's processes and Redis).
With --profile, py-spy records SafeServe's replicas and its HTTP proxy under 16 clients and writes their
collapsed stacks (the input of flame graph tools, e.g. speedscope or inferno) to bench/results/profile/, with
each replica's hottest frames printed. Writes bench/results/gateway.json and the table in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import psutil

from bench.latency import parse_server_timing, percentile
from classifiers.paths import models_dir
from harness.processes import free_port, wait_ready, wait_until

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gateway.json"
PROFILES = ROOT / "bench" / "results" / "profile"
DOC = ROOT / "docs" / "architecture.md"
DOC_START, DOC_END = "<!-- bench-gateway:start -->", "<!-- bench-gateway:end -->"
PROMPT = "What is the capital of France, and what is it known for?"
# The upstream's answer: 40 words of ordinary prose, so the Moderator reads what a served model would write.
ANSWER = (
    "Paris is the capital of France. It lies on the Seine in the north of the country and is known for its "
    "museums, its cafes, its wide boulevards and a long history as a centre of art, science, fashion and "
    "government in Europe."
)
# What `POST /v1/moderations` is timed on: a 60-word answer, as issue 20's target states it.
MODERATION_TEXT = " ".join((ANSWER + " " + ANSWER).split()[:60])
UPSTREAM_MODEL = "scripted-upstream"
SERVED_MODEL = "safeserve-smollm2"
T = TypeVar("T")
NO_LIMITS = {"requests_per_minute": 10_000_000, "tokens_per_minute": 10_000_000_000, "tokens_per_day": 10**12}


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    headers: dict[str, str]
    model: str
    processes: list[psutil.Process] = field(default_factory=list)  # whose CPU time counts as this target's

    def body(self, stream: bool = False) -> dict:
        return {"model": self.model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of each of the target's processes, by role (a Serve replica by deployment)."""
        by_role: dict[str, float] = {}
        for process in self.tree():
            try:
                times = process.cpu_times()
                role = role_of(process)
            except psutil.Error:
                continue
            by_role[role] = by_role.get(role, 0.0) + times.user + times.system
        return by_role

    def tree(self) -> list[psutil.Process]:
        found = {}
        for process in self.processes:
            try:
                for member in [process, *process.children(recursive=True)]:
                    found[member.pid] = member
            except psutil.Error:
                continue
        return list(found.values())


def role_of(process: psutil.Process) -> str:
    title = " ".join(process.cmdline())
    if found := re.search(r"ServeReplica:\w+:(\w+)", title):
        return found.group(1)
    if "ProxyActor" in title:
        return "HTTP proxy"
    if "ServeController" in title:
        return "Serve controller"
    return process.name()


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def running(process: subprocess.Popen, stop: signal.Signals = signal.SIGTERM):
    try:
        yield process
    finally:
        process.send_signal(stop)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()


def start_server(stack: ExitStack, work: Path, name: str, module: str, *args: str) -> Target:
    """A bench server (`python -m module --port P ...`) in a process of its own, served on loopback."""
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), *args]
    process = stack.enter_context(running(spawn(command, work / f"{module.rsplit('.', 1)[-1]}.log")))
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: port_answers(url), 30, what=name)
    return Target(name, f"{url}/v1/chat/completions", {}, UPSTREAM_MODEL, [psutil.Process(process.pid)])


def start_safeserve(stack: ExitStack, work: Path, upstream: str, root: Path = ROOT, name: str = "SafeServe") -> Target:
    """`scripts/run.sh` (what `make run` starts) of the checkout at `root` on free ports, its own Redis and Ray,
    guarding the upstream."""
    work = work / name.replace(" ", "-")
    work.mkdir()
    http_port, redis_port, admin_key = free_port(), free_port(), f"ss-admin-bench-{secrets.token_urlsafe(16)}"
    ray_tmp = tempfile.mkdtemp(prefix="ssbench-", dir="/tmp")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SAFESERVE_"))}
    env.update(
        SAFESERVE_HOME=str(work / "home"),
        SAFESERVE_MODELS_DIR=str(models_dir()),
        SAFESERVE_HTTP_PORT=str(http_port),
        SAFESERVE_REDIS_PORT=str(redis_port),
        SAFESERVE_ADMIN_KEY=admin_key,
        RAY_TMPDIR=ray_tmp,
        SAFESERVE_GENERATOR_BACKEND="openai_upstream",
        SAFESERVE_UPSTREAM_URL=upstream,
        SAFESERVE_UPSTREAM_MODEL=UPSTREAM_MODEL,
        PYTHONPATH=str(root),  # its own code, whichever checkout the virtualenv was installed from
    )
    run = stack.enter_context(running(spawn(["bash", str(root / "scripts" / "run.sh")], work / "safeserve.log", env)))
    stack.callback(shutil.rmtree, ray_tmp, True)
    base = f"http://127.0.0.1:{http_port}"
    wait_ready(base, timeout_s=600)
    created = httpx.post(
        f"{base}/admin/keys",
        json={"user_id": "bench-gateway", "tier": "trusted", "limits": NO_LIMITS},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    created.raise_for_status()
    redis_pid = int((work / "home" / "redis" / "redis.pid").read_text())
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    processes = [psutil.Process(run.pid), psutil.Process(redis_pid)]
    return Target(name, f"{base}/v1/chat/completions", headers, SERVED_MODEL, processes)


def port_answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def rotated(targets: list[Target], i: int) -> list[Target]:
    return targets[i % len(targets) :] + targets[: i % len(targets)]


def interleaved(
    targets: list[Target], n: int, warmup: int, measure: Callable[[httpx.Client, Target], T]
) -> dict[str, list[T]]:
    """`measure` n times per target on keep-alive connections, one target after another per round (each round
    starting with the next target), after `warmup` rounds that warm connections and replicas."""
    clients = {t.name: httpx.Client(headers=t.headers, timeout=60) for t in targets}
    samples: dict[str, list[T]] = {t.name: [] for t in targets}
    try:
        for i in range(n + warmup):
            for target in rotated(targets, i):
                sample = measure(clients[target.name], target)
                if i >= warmup:
                    samples[target.name].append(sample)
    finally:
        for client in clients.values():
            client.close()
    return samples


def timed_request(client: httpx.Client, target: Target) -> tuple[float, dict[str, float]]:
    """The request's time in ms, and its `Server-Timing` stages (none for a target that sends none)."""
    start = time.perf_counter()
    response = client.post(target.url, json=target.body())
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed, parse_server_timing(response.headers.get("server-timing", ""))


def sequential(targets: list[Target], n: int) -> dict[str, dict]:
    results = {}
    for name, samples in interleaved(targets, n, 10, timed_request).items():
        values = [elapsed for elapsed, _ in samples]
        row = {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95), "n": len(values)}
        stages = [timing for _, timing in samples if timing]
        if stages:
            names = sorted({stage for timing in stages for stage in timing})
            row["server_timing_p50_ms"] = {
                stage: percentile([t[stage] for t in stages if stage in t], 0.5) for stage in names
            }
        results[name] = row
    return results


def moderations(targets: list[Target], n: int) -> dict[str, dict]:
    """`POST /v1/moderations` of one 60-word text, one at a time, for the SafeServe targets (the others have no
    such endpoint): p50/p95 as the caller sees them, and the `moderate` stage's p50."""

    def moderated(client: httpx.Client, target: Target) -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        response = client.post(target.url.replace("/chat/completions", "/moderations"), json={"input": MODERATION_TEXT})
        elapsed = (time.perf_counter() - start) * 1000
        response.raise_for_status()
        return elapsed, parse_server_timing(response.headers.get("server-timing", ""))

    guarded = [target for target in targets if target.name.startswith("SafeServe")]
    results = {}
    for name, samples in interleaved(guarded, n, 10, moderated).items():
        values = [elapsed for elapsed, _ in samples]
        stage = [timing["moderate"] for _, timing in samples if "moderate" in timing]
        results[name] = {
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
            "moderate_stage_p50_ms": percentile(stage, 0.5) if stage else None,
            "n": len(values),
        }
    return results


def first_content_ms(client: httpx.Client, target: Target) -> float:
    start = time.perf_counter()
    first = None
    with client.stream("POST", target.url, json=target.body(stream=True)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = (time.perf_counter() - start) * 1000
    if first is None:
        raise RuntimeError(f"{target.name}: a stream with no content")
    return first


def streams(targets: list[Target], n: int) -> dict[str, dict]:
    return {
        name: {"first_content_p50_ms": percentile(v, 0.5), "first_content_p95_ms": percentile(v, 0.95), "n": len(v)}
        for name, v in interleaved(targets, n, 5, first_content_ms).items()
    }


def hey(target: Target, clients: int, seconds: float) -> dict:
    """One `hey` run; its summary parsed, and the CPU time the target's processes spent meanwhile."""
    command = ["hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-T", "application/json"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-d", json.dumps(target.body()), target.url]
    cpu_before = target.cpu_seconds()
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    wall = time.perf_counter() - started
    cpu_after = target.cpu_seconds()
    spent = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
    summary = parse_hey(process.stdout)
    served = summary["requests"] or 1
    summary["cpu_ms_per_request"] = round(1000 * sum(spent.values()) / served, 3)
    summary["cpu_ms_per_request_by_process"] = {
        role: round(1000 * cpu / served, 3) for role, cpu in sorted(spent.items(), key=lambda item: -item[1]) if cpu > 0
    }
    summary["wall_s"] = round(wall, 1)
    return summary


def parse_hey(text: str) -> dict:
    def number(pattern: str) -> float | None:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else None

    statuses = {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    errors_block = text.split("Error distribution:")[1] if "Error distribution:" in text else ""
    transport_errors = sum(int(count) for count in re.findall(r"\[(\d+)\]\s", errors_block))
    ok = statuses.get(200, 0)
    return {
        "requests": sum(statuses.values()),
        "req_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": ms(number(r"50%+ in ([\d.]+) secs")),
        "p99_ms": ms(number(r"99%+ in ([\d.]+) secs")),
        "errors": sum(statuses.values()) - ok + transport_errors,
        "statuses": statuses,
    }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def sweep(targets: list[Target], client_counts: list[int], seconds: float) -> dict[str, dict[str, dict]]:
    results: dict[str, dict[str, dict]] = {t.name: {} for t in targets}
    for i, clients in enumerate(client_counts):
        for target in rotated(targets, i):
            results[target.name][str(clients)] = hey(target, clients, seconds)
            row = results[target.name][str(clients)]
            print(f"  {clients:>3} clients  {target.name:<22} {fmt_sweep(row)}")
            if len(row["cpu_ms_per_request_by_process"]) > 1:
                top = list(row["cpu_ms_per_request_by_process"].items())[:8]
                print("      cpu ms/req by process: " + ", ".join(f"{role} {ms:.2f}" for role, ms in top))
    return results


def shown(value: float | None, spec: str) -> str:
    """A figure hey may not print (a percentile of a short run): "-" rather than a made-up 0."""
    return "-".rjust(len(format(0.0, spec))) if value is None else format(value, spec)


def fmt_sweep(row: dict) -> str:
    return (
        f"{shown(row['req_per_s'], '>8.1f')} req/s  p50 {shown(row['p50_ms'], '>7.1f')} ms  "
        f"p99 {shown(row['p99_ms'], '>7.1f')} ms"
        f"  errors {row['errors']:>4}  cpu {row['cpu_ms_per_request'] or 0:.2f} ms/req"
    )


def profile(target: Target, seconds: float, clients: int = 16) -> list[str]:
    """py-spy flame graphs of SafeServe's replicas while `hey` loads it."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install -e '.[bench]'")
    PROFILES.mkdir(parents=True, exist_ok=True)
    replicas = {}
    for process in target.tree():
        try:
            title = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if found := re.search(r"ServeReplica:\w+:(\w+)", title):
            replicas[f"{found.group(1)}-{process.pid}"] = process.pid
        elif "ProxyActor" in title:
            replicas[f"Proxy-{process.pid}"] = process.pid
    recorders = [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(PROFILES / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in replicas.items()
    ]
    hey(target, clients, seconds)
    for recorder in recorders:
        recorder.wait(120)
    for name in sorted(replicas):
        print(f"  {name}: " + "; ".join(f"{frame} {share:.0%}" for frame, share in hottest(PROFILES / f"{name}.txt")))
    return sorted(f"{name}.txt" for name in replicas)


def hottest(collapsed: Path, top: int = 8) -> list[tuple[str, float]]:
    """The frames where most samples were taken (self time), with their share of the samples."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines() if collapsed.exists() else []:
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf] = counts.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
    return [(frame, count / total) for frame, count in ranked]


def table(report: dict) -> str:
    seq, streamed, swept = report["sequential"], report["streams"], report["sweep"]
    upstream = seq["upstream alone"]["p50_ms"]
    upstream_stream = streamed["upstream alone"]["first_content_p50_ms"]
    counts = report["clients"]
    head = (
        "| | added p50 | p95 | first content (added) | "
        + " | ".join(f"req/s at {c}" for c in counts)
        + f" | p50 / p99 at {counts[-2] if len(counts) > 1 else counts[0]} | CPU ms per request |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    load = str(counts[-2] if len(counts) > 1 else counts[0])
    for name in seq:
        added = "-" if name == "upstream alone" else f"+{seq[name]['p50_ms'] - upstream:.1f} ms"
        first = streamed[name]["first_content_p50_ms"]
        first_added = "" if name == "upstream alone" else f" (+{first - upstream_stream:.1f})"
        rates = " | ".join(shown(swept[name][str(c)]["req_per_s"], ",.0f") for c in counts)
        under = swept[name][load]
        lines.append(
            f"| {name} | {added} | {seq[name]['p95_ms']:.1f} ms | {first:.1f} ms{first_added} | {rates} | "
            f"{shown(under['p50_ms'], '.0f')} / {shown(under['p99_ms'], '.0f')} ms | "
            f"{under['cpu_ms_per_request']:.2f} |"
        )
    errors = {name: sum(row["errors"] for row in rows.values()) for name, rows in swept.items()}
    moderated = "; ".join(
        f"{name} p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms (`moderate` stage "
        f"{shown(row['moderate_stage_p50_ms'], '.1f')} ms)"
        for name, row in report["moderations"].items()
    )
    stages = seq["SafeServe"].get("server_timing_p50_ms", {})
    lines += [
        "",
        f"Errors in the sweep: {', '.join(f'{name} {count}' for name, count in errors.items())}. "
        "SafeServe's `Server-Timing` p50 (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) + ".",
        f"`POST /v1/moderations` of one 60-word text, one at a time: {moderated}.",
        f"Measured {report['date']} on {report['machine']} with `make bench-gateway` "
        f"({report['n']} sequential requests and {report['streams_n']} streams per target, "
        f"{report['seconds']} s per sweep run).",
    ]
    return "\n".join(lines)


def write_doc(markdown: str) -> None:
    text = DOC.read_text()
    if DOC_START not in text:
        raise SystemExit(f"{DOC} has no {DOC_START} ... {DOC_END} block")
    head, rest = text.split(DOC_START, 1)
    _old, tail = rest.split(DOC_END, 1)
    DOC.write_text(f"{head}{DOC_START}\n{markdown}\n{DOC_END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="sequential requests per target")
    parser.add_argument("--streams", type=int, default=100, help="streams per target")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=10, help="length of each sweep run")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graphs of SafeServe's replicas")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the table in docs/architecture.md")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure the SafeServe of another checkout (e.g. `git worktree add /tmp/base main~5`, with a "
        ".venv of its own or a link to this one), interleaved with the others",
    )
    args = parser.parse_args()
    if shutil.which("hey") is None:
        raise SystemExit("the sweep needs `hey` (Debian package hey): scripts/system_deps.sh --bench installs it")
    counts = [int(c) for c in args.clients.split(",")]

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work = Path(tmp)
        upstream = start_server(stack, work, "upstream alone", "harness.scripted_upstream", "--answer", ANSWER)
        upstream_base = upstream.url.removesuffix("/chat/completions")
        print("starting the pass-through and SafeServe (first start loads the models)...")
        passthrough = start_server(
            stack, work, "minimal pass-through", "bench.passthrough", "--upstream", upstream_base
        )
        targets = [upstream, passthrough, start_safeserve(stack, work, upstream_base)]
        if args.baseline:
            targets.append(start_safeserve(stack, work, upstream_base, args.baseline.resolve(), "SafeServe baseline"))
        print(f"sequential: {args.n} requests per target")
        seq = sequential(targets, args.n)
        for name, row in seq.items():
            print(f"  {name:<22} p50 {row['p50_ms']:>6.1f} ms  p95 {row['p95_ms']:>6.1f} ms")
        print(f"moderations: {args.n} texts per SafeServe target")
        moderated = moderations(targets, args.n)
        for name, row in moderated.items():
            print(
                f"  {name:<22} p50 {row['p50_ms']:>6.1f} ms  p95 {row['p95_ms']:>6.1f} ms  "
                f"moderate stage p50 {shown(row['moderate_stage_p50_ms'], '>5.1f')} ms"
            )
        print(f"streams: {args.streams} per target")
        streamed = streams(targets, args.streams)
        for name, row in streamed.items():
            print(f"  {name:<22} first content p50 {row['first_content_p50_ms']:>6.1f} ms")
        print(f"sweep: {args.seconds:.0f} s per run")
        swept = sweep(targets, counts, args.seconds)
        profiles = profile(targets[2], args.seconds) if args.profile else []

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs, {platform_name()}",
        "n": args.n,
        "streams_n": args.streams,
        "seconds": args.seconds,
        "clients": counts,
        "answer_words": len(ANSWER.split()),
        "sequential": seq,
        "moderations": moderated,
        "streams": streamed,
        "sweep": swept,
        "profiles": profiles,
    }
    markdown = table(report)
    print("\n" + markdown)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS}")
    if not args.no_doc:
        write_doc(markdown)
        print(f"table written to {DOC}")


def platform_name() -> str:
    import platform

    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
