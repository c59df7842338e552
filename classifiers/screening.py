"""What the gateway decides about caller input before generation, as a pure function (no Ray, no I/O).

`screen_conversations` runs the deny patterns over every view of every untrusted turn (and over the joined
turns when there are several), then, unless a pattern blocks, the intent analyser over the same views, and
merges the two the way the ingress does (`serve_app.chat.safety.screen_input`, which shares `screen_patterns`
and awaits the IntentClassifier deployment instead). `safeserve eval` uses it to measure detection without
a running app.
"""

from __future__ import annotations

from dataclasses import dataclass

from classifiers.intent import IntentAnalyzer
from classifiers.patterns import PatternSet
from classifiers.verdict import Action, Verdict, strongest

# One conversation: per untrusted turn, its views (`classifiers.normalize.views`, the normalised text first).
TurnViews = list[list[str]]


@dataclass(frozen=True)
class InputScreen:
    """The merged decision, and its parts: `model` is None when a pattern blocked (the model is not asked)."""

    verdict: Verdict
    patterns: Verdict
    model: Verdict | None

    @property
    def blocked(self) -> bool:
        return self.verdict.action is Action.BLOCK

    @property
    def score(self) -> float:
        """1.0 when a deny pattern blocks, else the highest model score over all views and categories."""
        if self.patterns.action is Action.BLOCK or self.model is None:
            return 1.0
        return max(self.model.scores.values(), default=0.0)


def pattern_texts(turn_views: TurnViews) -> list[str]:
    """Every view of every turn, plus the normalised turns joined when there are several."""
    texts = [text for turn in turn_views for text in turn]
    if len(turn_views) > 1:
        texts.append("\n".join(turn[0] for turn in turn_views))
    return texts


def screen_patterns(turn_views: TurnViews, patterns: PatternSet) -> Verdict:
    return strongest([patterns.check(text) for text in pattern_texts(turn_views)], layer="input_patterns")


def screen_conversations(
    conversations: list[TurnViews], patterns: PatternSet, analyzer: IntentAnalyzer
) -> list[InputScreen]:
    """One `InputScreen` per conversation; the conversations no pattern blocks go through the model as one batch."""
    pattern_verdicts = [screen_patterns(turn_views, patterns) for turn_views in conversations]
    to_classify = [i for i, verdict in enumerate(pattern_verdicts) if verdict.action is not Action.BLOCK]
    model_verdicts = dict(zip(to_classify, analyzer.classify([conversations[i] for i in to_classify]), strict=True))
    screens = []
    for i, pattern_verdict in enumerate(pattern_verdicts):
        model_verdict = model_verdicts.get(i)
        if model_verdict is None:
            screens.append(InputScreen(pattern_verdict, pattern_verdict, None))
        else:
            merged = strongest([pattern_verdict, model_verdict], layer="input")
            screens.append(InputScreen(merged, pattern_verdict, model_verdict))
    return screens
