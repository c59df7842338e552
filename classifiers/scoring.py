"""The small protocol every ML safety model implements, and how an ensemble of them is combined."""

from __future__ import annotations

from typing import Protocol

from classifiers.taxonomy import Category


class Scorer(Protocol):
    """Scores texts per category in [0, 1]; a missing category means 0."""

    def predict(self, texts: list[str]) -> list[dict[Category, float]]: ...


def max_scores(rows: list[dict[Category, float]]) -> dict[Category, float]:
    """Category-wise maximum: any member (or any turn of a conversation) that sees a risk is enough."""
    merged: dict[Category, float] = {}
    for row in rows:
        for category, score in row.items():
            merged[category] = max(merged.get(category, 0.0), float(score))
    return merged


def ensemble_predict(scorers: list[Scorer], texts: list[str]) -> list[dict[Category, float]]:
    """Run every scorer over the whole batch (one model call each) and merge per text."""
    per_scorer = [scorer.predict(texts) for scorer in scorers]
    return [max_scores([rows[i] for rows in per_scorer]) for i in range(len(texts))]
