"""Output-side moderation: secrets and personal data, a deny-list and an ensemble of ML models, decided by
per-category bands.

The models score the text as generated; redaction is about what is delivered. A `block` kind in
`SensitiveDataPolicy` blocks like any other layer; `redact` kinds come back as `Verdict.redactions` on a
verdict that does not block, for the caller to apply (`classifiers.verdict.apply_redactions`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict
from classifiers.sensitive_data import SensitiveDataPolicy, redaction_reasons
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict, strongest

LAYER = "moderator"


@dataclass(frozen=True)
class Assessment:
    """The Moderator's verdict on one text, with its parts: the ML scores and the rule-based checks merged
    (deny-list and secrets or personal data)."""

    verdict: Verdict
    model_scores: dict[Category, float]
    rules: Verdict

    @property
    def score(self) -> float:
        """1.0 when a rule blocks, else the highest model score."""
        if self.rules.action is Action.BLOCK:
            return 1.0
        return max(self.model_scores.values(), default=0.0)


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
        return [assessment.verdict for assessment in self.assess(texts)]

    def assess(self, texts: list[str]) -> list[Assessment]:
        """`moderate`, keeping the model scores and the rule-based part of each verdict apart as well."""
        model_scores = ensemble_predict(self.scorers, texts) if texts else []
        return [self._decide(text, scores) for text, scores in zip(texts, model_scores, strict=True)]

    def _decide(self, text: str, scores: dict[Category, float]) -> Assessment:
        sensitive = self.sensitive_data.check(text, layer=LAYER)
        denied = self.denylist.check(text)
        verdict = strongest(
            [denied, self.thresholds.decide(scores, layer=LAYER, reason="model"), sensitive], layer=LAYER
        )
        rules = strongest([denied, sensitive], layer=LAYER)
        if verdict.action is not Action.BLOCK and sensitive.redactions:
            verdict = replace(
                verdict,
                reasons=verdict.reasons + redaction_reasons(sensitive.redactions),
                redactions=sensitive.redactions,
            )
        return Assessment(verdict, scores, rules)
