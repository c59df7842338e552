"""The pure parts of the intent leave-one-source-out bench: what is trained on, where the threshold comes from."""

from __future__ import annotations

import numpy as np

from bench.intent_loso import fit_and_tune, split_key, threshold_at_fpr, training_split
from bench.loso import figures
from classifiers.training.intent_data import BENIGN, Example
from classifiers.training.splits import DEV, TRAIN, split_of

SOURCES = ("kept-a", "kept-b", "held")


def corpus(n: int = 600) -> list[Example]:
    """Rows spread over three sources, every fifth an attack, every seventh one of a two-variant group."""
    rows = []
    for i in range(n):
        source = SOURCES[i % 3]
        label = "prompt_injection" if i % 5 == 0 else BENIGN
        group = f"g{i // 2}" if i % 7 == 0 else ""
        rows.append(Example(f"{source} prompt number {i}", label, source, group))
    return rows


def test_the_held_out_source_is_never_trained_or_tuned_on() -> None:
    rows = corpus()
    train, dev = training_split(rows, frozenset({"held"}))
    assert train and dev
    assert not any(r.source == "held" for r in (*train, *dev))
    assert {r.source for r in train} == {"kept-a", "kept-b"}
    assert all(split_of(split_key(r)) == TRAIN for r in train)
    assert all(split_of(split_key(r)) == DEV for r in dev)
    assert not {r.text for r in train} & {r.text for r in dev}


def test_variants_of_one_prompt_share_a_split() -> None:
    rows = [Example(f"variant {i} of one prompt", BENIGN, "kept-a", "g1") for i in range(40)]
    train, dev = training_split(rows, frozenset())
    assert len(train) in (0, 40) and len(dev) in (0, 40)


def test_the_threshold_holds_the_benign_fpr_of_the_scores_given() -> None:
    scores = np.concatenate([np.linspace(0.0, 0.99, 100), np.full(10, 0.999)])
    is_attack = np.array([False] * 100 + [True] * 10)
    threshold = threshold_at_fpr(scores, is_attack, 0.02)
    assert (scores[~is_attack] >= threshold).sum() == 2
    assert figures(is_attack, scores, threshold, "attacks")["recall"] == 1.0


def test_the_threshold_comes_from_the_dev_split_of_the_kept_sources_only() -> None:
    rows = corpus()
    trained: list[str] = []
    # Held-out rows score 1.0 whatever their label: a threshold that saw them would move to 1.0.
    score_of = {r.text: (1.0 if r.source == "held" else (i % 97) / 100) for i, r in enumerate(rows)}

    def fit(train_rows: list[Example]):
        trained.extend(r.text for r in train_rows)
        return lambda texts: np.array([score_of[t] for t in texts])

    tuned = fit_and_tune(rows, frozenset({"held"}), fit)
    _, dev = training_split(rows, frozenset({"held"}))
    dev_benign = np.array([score_of[r.text] for r in dev if r.label == BENIGN])
    assert tuned["threshold"] == float(np.quantile(dev_benign, 0.98))
    assert tuned["threshold"] < 1.0
    assert not any(text.startswith("held ") for text in trained)
    assert len(trained) == len(tuned["trained"])
