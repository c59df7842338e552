"""alt-profanity-check as an ensemble member: a linear model (MIT, weights ship in the wheel), ~0.01 ms/text."""

from __future__ import annotations

from profanity_check import predict_prob

from classifiers.taxonomy import Category


class ProfanityScorer:
    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        if not texts:
            return []
        return [{Category.PROFANITY: float(p)} for p in predict_prob(texts)]
