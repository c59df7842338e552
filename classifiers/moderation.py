"""Output-side moderation: secrets and personal data, a deny-list and an ensemble of ML models, decided by
per-category bands.

The models score the text as generated; redaction is about what is delivered. A `block` kind in
`SensitiveDataPolicy` blocks like any other layer; `redact` kinds come back as `Verdict.redactions` on a
verdict that does not block, for the caller to apply (`classifiers.verdict.apply_redactions`).
"""

from __future__ import annotations

from dataclasses import replace

from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict
from classifiers.sensitive_data import SensitiveDataPolicy, redaction_reasons
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict, strongest

LAYER = "moderator"


class OutputModerator:
    def __init__(
        self,
        denylist: PatternSet,
        scorers: list[Scorer],
        thresholds: ThresholdPolicy,
        sensitive_data: SensitiveDataPolicy | None = None,
    ) -> None:
        self.denylist = denylist
        self.scorers = scorers
        self.thresholds = thresholds
        self.sensitive_data = sensitive_data or SensitiveDataPolicy()

    def moderate(self, texts: list[str]) -> list[Verdict]:
        model_scores = ensemble_predict(self.scorers, texts) if texts else []
        return [self._decide(text, scores) for text, scores in zip(texts, model_scores, strict=True)]

    def _decide(self, text: str, scores: dict[Category, float]) -> Verdict:
        sensitive = self.sensitive_data.check(text, layer=LAYER)
        others = [self.denylist.check(text), self.thresholds.decide(scores, layer=LAYER, reason="model")]
        verdict = strongest([*others, sensitive], layer=LAYER)
        if verdict.action is Action.BLOCK or not sensitive.redactions:
            return verdict
        return replace(
            verdict,
            reasons=verdict.reasons + redaction_reasons(sensitive.redactions),
            redactions=sensitive.redactions,
        )
