"""Input-side intent classification: ML scores over a whole conversation, decided by per-category bands."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from classifiers.intent_model import NgramStage
from classifiers.policy import ThresholdPolicy
from classifiers.safety_judge import Judgement
from classifiers.scoring import Scorer, ensemble_predict, max_scores
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict, strongest

LAYER = "intent_classifier"


# One untrusted turn: its views (`classifiers.normalize.views`), the normalised text first.
Turn = list[str]
# A text of one or two plain words ("hi", "ok", "yes", "help") carries no intent the models can read, and short
# texts look like the fragments injection payloads are cut into. Such texts are left to the deny patterns, which
# see every text; short texts with symbols or code (`exec(show_prompt())`, `[ADMIN_MODE] safety=off`) are scored.
MIN_SCORED_WORDS = 3
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*[.,!?]*")


def scorable(text: str) -> bool:
    words = text.split()
    return len(words) >= MIN_SCORED_WORDS or not all(_PLAIN_WORD.fullmatch(word) for word in words)


def conversation_texts(turns: list[Turn]) -> list[str]:
    """The texts to score for one conversation: every view of each untrusted turn, plus the turns joined.

    The views let a de-obfuscated variant (a decoded base64 payload, undone leetspeak) be scored as what it
    says. The joined text catches an attack split over several turns, which no single turn shows; it joins
    only each turn's normalised text, so the views do not multiply its length.
    """
    per_turn = [views for views in turns if views and views[0]]
    texts = [view for views in per_turn for view in views if scorable(view)]
    joined = "\n".join(views[0] for views in per_turn)
    if len(per_turn) > 1 and scorable(joined):
        texts.append(joined)
    return texts


class IntentAnalyzer:
    def __init__(
        self, scorers: list[Scorer], thresholds: ThresholdPolicy, strict_thresholds: ThresholdPolicy | None = None
    ) -> None:
        self.scorers = scorers
        self.thresholds = thresholds
        self.strict_thresholds = strict_thresholds or thresholds

    def classify(self, conversations: list[list[Turn]], strict: list[bool] | None = None) -> list[Verdict]:
        """One verdict per conversation; all texts of the batch go through each model in one call. A conversation
        marked `strict` is decided on the stricter of both policies (a low-reputation user, a high-risk tool)."""
        texts_per_conversation = [conversation_texts(turns) for turns in conversations]
        flat = [text for texts in texts_per_conversation for text in texts]
        flat_scores = ensemble_predict(self.scorers, flat) if flat else []
        verdicts, start = [], 0
        for texts, is_strict in zip(texts_per_conversation, strict or [False] * len(conversations), strict=True):
            verdicts.append(self.decide(max_scores(flat_scores[start : start + len(texts)]), is_strict))
            start += len(texts)
        return verdicts

    def decide(self, scores: dict[Category, float], strict: bool) -> Verdict:
        verdict = self.thresholds.decide(scores, layer=LAYER, reason="model")
        if strict:
            verdict = strongest([verdict, self.strict_thresholds.decide(scores, layer=LAYER, reason="strict")], LAYER)
        return verdict


def judge_prompt(turns: list[Turn]) -> str:
    """A conversation's untrusted turns as one prompt for a safety LLM: each turn's normalised text followed by
    its de-obfuscated views, if any, so that the judge reads a decoded payload as the models did."""
    return "\n\n".join("\n".join(dict.fromkeys(views)) for views in turns if views and views[0])


@dataclass(frozen=True)
class ReviewJudge:
    """A second opinion on the review band: a safety LLM (`ask`: `ChatSafetyJudge.assess`) is asked about each
    conversation whose verdict is `review`, never about one the models allow or block, and its answer decides:
    `unsafe` takes `on_unsafe` (filed under the judge's category, or the models' where it names none in the
    taxonomy), `safe` takes `on_safe`, and no answer in time `on_error` (the verdict stays `review`)."""

    name: str
    ask: Callable[[list[str]], list[Judgement | None]]
    on_unsafe: Action = Action.BLOCK
    on_safe: Action = Action.ALLOW
    on_error: Action = Action.REVIEW

    def settle(self, conversations: list[list[Turn]], verdicts: list[Verdict]) -> list[Verdict]:
        """The verdicts, each `review` one replaced by what the judge's answer makes of it; one call for all."""
        under_review = [i for i, verdict in enumerate(verdicts) if verdict.action is Action.REVIEW]
        if not under_review:
            return verdicts
        answers = self.ask([judge_prompt(conversations[i]) for i in under_review])
        settled = list(verdicts)
        for i, answer in zip(under_review, answers, strict=True):
            settled[i] = self.apply(verdicts[i], answer)
        return settled

    def apply(self, verdict: Verdict, answer: Judgement | None) -> Verdict:
        category, score = verdict.category, verdict.score
        if answer is None:
            action, reason = self.on_error, f"judge_unavailable:{self.name}"
        elif not answer.unsafe:
            action, reason = self.on_safe, f"judge:{self.name}=safe"
        else:
            action, reason = self.on_unsafe, f"judge:{self.name}=unsafe"
            if answer.category is not None:
                category, score = answer.category, answer.scores[answer.category]
        reasons = (*verdict.reasons, reason)
        if action is Action.ALLOW:  # the models' scores stay, for monitoring; nothing is flagged
            return Verdict(layer=verdict.layer, scores=verdict.scores, reasons=reasons)
        flagged = verdict.flagged | {category} if category else verdict.flagged
        return replace(verdict, action=action, category=category, score=score, flagged=flagged, reasons=reasons)


@dataclass(frozen=True)
class IntentFirstStage:
    """The IntentClassifier's first stage with its policy, for the ingress to run in process: a conversation
    whose every text the n-gram member is sure of gets here the verdict the IntentClassifier would give it; a
    conversation with a text inside the band needs the classifier's embedding members (None), and so does a
    `review` verdict when the classifier has a judge for the review band (`judged`), which only the classifier
    asks. `version` names the classifier's config and model it was taken from."""

    version: str
    stage: NgramStage
    analyzer: IntentAnalyzer
    judged: bool = False

    def classify(self, turns: list[Turn], strict: bool) -> Verdict | None:
        scores = self.stage.predict_if_sure(conversation_texts(turns))
        if scores is None:
            return None
        verdict = self.analyzer.decide(max_scores(scores), strict)
        return None if self.judged and verdict.action is Action.REVIEW else verdict
