"""What the leave-one-source-out benches (toxicity_loso, intent_loso) report for a set of rows, and how they print
it."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def figures(positive: np.ndarray, scores: np.ndarray, threshold: float, positives_named: str) -> dict:
    """Rows, positives (under `positives_named`), ROC AUC where both classes are present, and recall and
    false-positive rate at `threshold`; `positive` is a boolean array."""
    flagged = scores >= threshold
    both = 0 < positive.sum() < len(positive)
    return {
        "rows": int(len(positive)),
        positives_named: int(positive.sum()),
        "roc_auc": round(float(roc_auc_score(positive, scores)), 4) if both else None,
        "recall": round(float(flagged[positive].mean()), 4) if positive.any() else None,
        "false_positive_rate": round(float(flagged[~positive].mean()), 4) if (~positive).any() else None,
    }


def pct(value: float | None) -> str:
    return "    -" if value is None else f"{100 * value:5.1f}"


def auc(value: float | None) -> str:
    return "    -" if value is None else f"{value:.3f}"
