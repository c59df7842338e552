"""`safeserve eval DATASET.jsonl`: measure what the gateway flags on a labelled dataset.

In process (the default), input rows go through exactly the checks the gateway runs before generation
(`classifiers.screening`: every view through the Ingress deny patterns, then the intent model with the
IntentClassifier's thresholds) and output rows through the Moderator's stack, all built from a Serve config.
With `--url`, the same rows go to a running gateway instead. An input row counts as flagged when it is
blocked (a 400 `content_policy_violation`; review-band inputs are answered and queued, so they do not count),
an output row when the Moderator does not allow it (`flagged` of /v1/moderations).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from classifiers.evaluation import INPUT, Row, grouped_rates, latency_summary, rates, sweep
from classifiers.paths import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "local.yaml"


@dataclass(frozen=True)
class Outcome:
    flagged: bool
    score: float | None = None  # None where the gateway gives no score (input rows over HTTP)
    action: str | None = None
    layer: str | None = None
    decided_category: str | None = None


Judge = Callable[[str, str], Outcome]  # (text, the question it answers or "") -> outcome


def in_process_judge(side: str, config_path: Path) -> Judge:
    from classifiers.verdict import Action
    from serve_app.serve_config import check_file

    config = check_file(config_path)
    if side == INPUT:
        from classifiers.intent import IntentAnalyzer
        from classifiers.normalize import views
        from classifiers.patterns import PatternSet
        from classifiers.screening import screen_conversations
        from deployments.intent_classifier import load_intent_model

        patterns = PatternSet(list(config.ingress.input_patterns), layer="input_patterns")
        model = load_intent_model(config.intent_classifier)
        analyzer = IntentAnalyzer([model], config.intent_classifier.thresholds)

        def judge_input(text: str, question: str = "") -> Outcome:
            screen = screen_conversations([[views(text)]], patterns, analyzer)[0]
            verdict = screen.verdict
            return Outcome(screen.blocked, screen.score, verdict.action, verdict.layer, verdict.category)

        return judge_input

    from deployments.moderator import build_moderator, load_scorers

    moderator = build_moderator(config.moderator, load_scorers(config.moderator))

    def judge_output(text: str, question: str = "") -> Outcome:
        assessment = moderator.assess([text], [question])[0]
        verdict = assessment.verdict
        flagged = verdict.action is not Action.ALLOW
        return Outcome(flagged, assessment.score, verdict.action, verdict.layer, verdict.category)

    return judge_output


def http_judge(side: str, url: str, key: str, config_path: Path) -> Judge:
    import httpx

    client = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=180)

    def post(route: str, body: dict) -> httpx.Response:
        try:
            return client.post(route, json=body)
        except httpx.HTTPError as exc:
            raise EvalError(f"POST {url}{route}: {exc}") from exc

    if side == INPUT:
        from serve_app.serve_config import check_file

        served_model = check_file(config_path).ingress.served_model

        def judge_input(text: str, question: str = "") -> Outcome:
            body = {"model": served_model, "messages": [{"role": "user", "content": text}], "max_tokens": 1}
            response = post("/v1/chat/completions", body)
            if response.status_code == 200:
                return Outcome(False, action="allow")
            error = _error(response)
            if response.status_code == 400 and error.get("code") == "content_policy_violation":
                return Outcome(True, action="block", layer=error.get("layer"), decided_category=error.get("category"))
            raise EvalError(f"POST /v1/chat/completions: {response.status_code} {error or response.text[:200]}")

        return judge_input

    def judge_output(text: str, question: str = "") -> Outcome:
        # /v1/moderations reads text alone: an answer goes after its question, as the Moderator's answer check
        # would read it in a chat.
        response = post("/v1/moderations", {"input": f"{question}\n\n{text}" if question else text})
        if response.status_code != 200:
            raise EvalError(f"POST /v1/moderations: {response.status_code} {_error(response) or response.text[:200]}")
        result = response.json()["results"][0]
        scores = result.get("safeserve_categories") or {}
        top = max(scores, key=scores.get, default=None)
        return Outcome(result["flagged"], action=result.get("safeserve_action"), decided_category=top)

    return judge_output


class EvalError(RuntimeError):
    pass


def _error(response) -> dict:
    try:
        return response.json().get("error") or {}
    except (ValueError, AttributeError):
        return {}


def run(rows: list[Row], judge: Judge, progress: bool = True) -> tuple[list[Outcome], list[float]]:
    from tqdm import tqdm

    outcomes, seconds = [], []
    for row in tqdm(rows, desc="eval", unit="text", file=sys.stderr, disable=not progress):
        start = time.perf_counter()
        outcomes.append(judge(row.text, row.question or ""))
        seconds.append(time.perf_counter() - start)
    return outcomes, seconds


def build_report(
    dataset: Path, side: str, mode: str, rows: list[Row], outcomes: list[Outcome], seconds: list[float]
) -> dict:
    positive = [row.positive for row in rows]
    flagged = [outcome.flagged for outcome in outcomes]
    scores = [outcome.score for outcome in outcomes]
    return {
        "dataset": str(dataset),
        "side": side,
        "mode": mode,
        "flagged_means": "blocked before generation" if side == INPUT else "not allowed by the Moderator",
        "overall": rates(positive, flagged),
        "by_source": grouped_rates([row.source for row in rows], positive, flagged),
        "by_category": grouped_rates([row.category for row in rows], positive, flagged),
        "sweep": sweep(positive, scores) if all(score is not None for score in scores) else None,
        "latency": latency_summary(seconds),
        "rows": [
            {
                "line": row.line,
                "label": row.label,
                "source": row.source,
                "category": row.category,
                **asdict(outcome),
                "latency_ms": round(s * 1000, 3),
            }
            for row, outcome, s in zip(rows, outcomes, seconds, strict=True)
        ],
    }


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def format_report(report: dict) -> str:
    overall = report["overall"]
    positive, negative = ("attack", "benign") if report["side"] == INPUT else ("unsafe", "safe")
    lines = [
        f"{report['dataset']}: {overall['rows']} {report['side']} rows ({overall['positives']} {positive}, "
        f"{overall['negatives']} {negative}), {report['mode']}; flagged = {report['flagged_means']}",
        f"overall   recall {_pct(overall['recall'])}   false-positive rate {_pct(overall['false_positive_rate'])}",
    ]
    for title, key in (("source", "by_source"), ("category", "by_category")):
        lines.append(f"by {title}:")
        width = max(map(len, report[key]), default=0)
        for name, group in report[key].items():
            lines.append(
                f"  {name:<{width}}  recall {_pct(group['recall'])} ({group['positives']:>3})"
                f"   FPR {_pct(group['false_positive_rate'])} ({group['negatives']:>3})"
            )
    if report["sweep"] is None:
        lines.append("threshold sweep: n/a (the gateway gives no score for inputs over HTTP)")
    else:
        basis = (
            "max model score over views, 1.0 when a deny pattern blocks"
            if report["side"] == INPUT
            else ("max model score, 1.0 when the deny-list or a secret blocks")
        )
        lines.append(f"threshold sweep (score = {basis}):")
        for point in report["sweep"]:
            lines.append(
                f"  >= {point['threshold']:.2f}   recall {_pct(point['recall'])}"
                f"   FPR {_pct(point['false_positive_rate'])}"
            )
    latency = report["latency"]
    lines.append(f"latency per text: p50 {latency['p50_ms']:.2f} ms   p95 {latency['p95_ms']:.2f} ms")
    return "\n".join(lines)


def write_plot(report: dict, path: Path) -> None:
    """ROC points from the sweep (when there is one) and recall/FPR bars per source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (roc, bars) = plt.subplots(1, 2, figsize=(11, 4.5))
    if report["sweep"]:
        points = [(p["false_positive_rate"] or 0.0, p["recall"] or 0.0, p["threshold"]) for p in report["sweep"]]
        xs, ys = [0.0, *(x for x, _, _ in reversed(points)), 1.0], [0.0, *(y for _, y, _ in reversed(points)), 1.0]
        roc.plot(xs, ys, marker="o")
        for x, y, threshold in points:
            roc.annotate(f"{threshold:.2f}", (x, y), fontsize=7, textcoords="offset points", xytext=(3, -8))
    else:
        roc.text(0.5, 0.5, "no scores (HTTP input side)", ha="center")
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="false-positive rate", ylabel="recall", title="ROC")
    names = list(report["by_source"])
    positions = range(len(names))
    width = 0.4
    bars.bar([i - width / 2 for i in positions], [g["recall"] or 0 for g in report["by_source"].values()], width)
    bars.bar(
        [i + width / 2 for i in positions], [g["false_positive_rate"] or 0 for g in report["by_source"].values()], width
    )
    bars.set_xticks(list(positions), names, rotation=30, ha="right")
    bars.legend(["recall", "false-positive rate"])
    bars.set(ylim=(0, 1.05), title="per source")
    figure.suptitle(f"{report['dataset']} ({report['side']}, {report['mode']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def evaluate(
    dataset: Path,
    config_path: Path = DEFAULT_CONFIG,
    url: str | None = None,
    key: str | None = None,
    progress: bool = True,
) -> dict:
    from classifiers.evaluation import load_dataset

    side, rows = load_dataset(dataset)
    if url:
        judge, mode = http_judge(side, url, key or "", config_path), f"http {url}"
    else:
        judge, mode = in_process_judge(side, config_path), "in process"
    outcomes, seconds = run(rows, judge, progress)
    return build_report(dataset, side, mode, rows, outcomes, seconds)


def write_json(report: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, default=str) + "\n")
