"""Classifier score distributions, for drift and threshold monitoring (`safeserve_classifier_score`)."""

from __future__ import annotations

from collections.abc import Iterable

from ray.serve import metrics

from classifiers.verdict import Verdict

CLASSIFIER_SCORE = metrics.Histogram(
    "safeserve_classifier_score",
    description="Per-category scores of the ML layers, one observation per text and category.",
    boundaries=[0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99],
    tag_keys=("classifier", "category"),
)


def observe_scores(classifier: str, verdicts: Iterable[Verdict]) -> None:
    for verdict in verdicts:
        for category, score in verdict.scores.items():
            CLASSIFIER_SCORE.observe(score, tags={"classifier": classifier, "category": str(category)})
