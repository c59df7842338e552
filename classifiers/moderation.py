"""Output-side moderation: a deny-list plus an ensemble of ML models, decided by per-category bands."""

from __future__ import annotations

from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict
from classifiers.verdict import Verdict, strongest

LAYER = "moderator"


class OutputModerator:
    def __init__(self, denylist: PatternSet, scorers: list[Scorer], thresholds: ThresholdPolicy) -> None:
        self.denylist = denylist
        self.scorers = scorers
        self.thresholds = thresholds

    def moderate(self, texts: list[str]) -> list[Verdict]:
        model_scores = ensemble_predict(self.scorers, texts) if texts else []
        return [
            strongest(
                [self.denylist.check(text), self.thresholds.decide(scores, layer=LAYER, reason="model")],
                layer=LAYER,
            )
            for text, scores in zip(texts, model_scores, strict=True)
        ]
