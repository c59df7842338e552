"""Input-side intent classification: ML scores over a whole conversation, decided by per-category bands."""

from __future__ import annotations

from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict, max_scores
from classifiers.verdict import Verdict

LAYER = "intent_classifier"


def conversation_texts(turns: list[str]) -> list[str]:
    """The texts to score for one conversation: each untrusted turn, plus all of them joined.

    The joined text catches an attack split over several turns, which no single turn shows.
    """
    turns = [turn for turn in turns if turn]
    if len(turns) > 1:
        return [*turns, "\n".join(turns)]
    return turns


class IntentAnalyzer:
    def __init__(self, scorers: list[Scorer], thresholds: ThresholdPolicy) -> None:
        self.scorers = scorers
        self.thresholds = thresholds

    def classify(self, conversations: list[list[str]]) -> list[Verdict]:
        """One verdict per conversation; all texts of the batch go through each model in one call."""
        texts_per_conversation = [conversation_texts(turns) for turns in conversations]
        flat = [text for texts in texts_per_conversation for text in texts]
        flat_scores = ensemble_predict(self.scorers, flat) if flat else []
        verdicts, start = [], 0
        for texts in texts_per_conversation:
            scores = max_scores(flat_scores[start : start + len(texts)])
            start += len(texts)
            verdicts.append(self.thresholds.decide(scores, layer=LAYER, reason="model"))
        return verdicts
