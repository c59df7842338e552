"""How the trainer picks per-group block thresholds from out-of-fold scores."""

from __future__ import annotations

import numpy as np

from classifiers.training.intent_data import Example
from classifiers.training.intent_trainer import REFERENCE_THRESHOLD, group_thresholds

CLASSES = ["benign", "prompt_injection", "violence"]


def rows_and_scores(benign_scores, injection_scores, violence_scores):
    """Rows labelled by group; each row's unsafe mass sits on its own category (benign rows: on violence for
    the first half, injection for the rest)."""
    rows, proba = [], []
    for i, s in enumerate(benign_scores):
        rows.append(Example(f"b{i}", "benign", "test"))
        proba.append([1 - s, 0, s] if i < len(benign_scores) / 2 else [1 - s, s, 0])
    for i, s in enumerate(injection_scores):
        rows.append(Example(f"i{i}", "prompt_injection", "test"))
        proba.append([1 - s, s, 0])
    for i, s in enumerate(violence_scores):
        rows.append(Example(f"v{i}", "violence", "test"))
        proba.append([1 - s, 0, s])
    return np.array(proba), rows


def test_a_lower_threshold_goes_to_the_group_whose_benign_lookalikes_score_low() -> None:
    # Benign texts that look like violence reach 0.75; those that look like injections never pass 0.4.
    benign = [0.75, 0.2, 0.1, 0.1] * 25 + [0.35, 0.1, 0.05, 0.0] * 25
    injections = [0.45, 0.55, 0.65, 0.95] * 25
    violence = [0.8, 0.9, 0.95, 0.99] * 25
    proba, rows = rows_and_scores(benign, injections, violence)
    chosen = group_thresholds(proba, CLASSES, rows)
    assert chosen["reference_threshold"] == REFERENCE_THRESHOLD
    assert chosen["reference"] == {"attack_recall": 0.625, "benign_fpr": 0.125}
    # The lowest thresholds that catch every attack without a false positive.
    assert (chosen["prompt_attacks"], chosen["harm"]) == (0.4, 0.8)
    assert chosen["attack_recall"] == 1.0 and chosen["benign_fpr"] == 0.0


def test_the_reference_false_positive_rate_is_never_exceeded() -> None:
    rng = np.random.default_rng(7)
    proba, rows = rows_and_scores(rng.beta(1, 5, 400), rng.beta(5, 1, 300), rng.beta(3, 2, 100))
    chosen = group_thresholds(proba, CLASSES, rows)
    assert chosen["benign_fpr"] <= chosen["reference"]["benign_fpr"]
    assert chosen["attack_recall"] >= chosen["reference"]["attack_recall"]
