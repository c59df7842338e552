"""Output-side moderation: secrets and personal data, swear words and slurs, a deny-list and an ensemble of
ML models, decided by per-category bands.

Redaction is about what is delivered. A `block` kind in `SensitiveDataPolicy` or a `block` severity in
`LexiconPolicy` blocks like any other layer; what they redact comes back as `Verdict.redactions` on a
verdict that does not block, for the caller to apply (`classifiers.verdict.apply_redactions`). The models
score the text as generated, except that the words the lexicon masks are masked for them too: a swear word
left in would make the profanity model block the very answer the mask was meant to deliver.

`answer_scorers` (the intent ensemble as `classifiers.answer_intent.HarmfulAnswerScorer`) read each text in the
context of the question it answers, when the caller gives one: harmful instructions are recognised by what
they answer as much as by their own words. Their scores are calibrated unlike the text models', so they are
decided by bands of their own (`answer_thresholds`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from classifiers.answer_intent import exchange_text
from classifiers.lexicon import LexiconPolicy, default_lexicon
from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict, max_scores
from classifiers.sensitive_data import SensitiveDataPolicy, find, redaction_reasons
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict, apply_redactions, merge_redactions, strongest

LAYER = "moderator"


@dataclass(frozen=True)
class Assessment:
    """The Moderator's verdict on one text, with its parts: the ML scores (of the text with the lexicon's
    masks applied) and the rule-based checks merged (deny-list, secrets or personal data, lexicon)."""

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
        lexicon: LexiconPolicy | None = None,
        answer_scorers: list[Scorer] | None = None,
        answer_thresholds: ThresholdPolicy | None = None,
        strict_thresholds: ThresholdPolicy | None = None,
    ) -> None:
        self.denylist = denylist
        self.scorers = scorers
        self.answer_scorers = answer_scorers or []
        self.thresholds = thresholds
        self.answer_thresholds = answer_thresholds or thresholds
        self.strict_thresholds = strict_thresholds or thresholds
        self.sensitive_data = sensitive_data or SensitiveDataPolicy()
        self.lexicon = lexicon or LexiconPolicy()
        self.words = default_lexicon()  # loaded here, so that a broken data file fails at start-up

    def moderate(
        self, texts: list[str], questions: list[str] | None = None, strict: list[bool] | None = None
    ) -> list[Verdict]:
        """One verdict per text; `questions[i]` is what `texts[i]` answers ("" or None: no context). A text marked
        `strict` has its model scores decided on the stricter of both policies (the rules are the same)."""
        return [assessment.verdict for assessment in self.assess(texts, questions, strict)]

    def assess(
        self, texts: list[str], questions: list[str] | None = None, strict: list[bool] | None = None
    ) -> list[Assessment]:
        """`moderate`, keeping the model scores and the rule-based part of each verdict apart as well."""
        checked = [self.lexicon.check(text, layer=LAYER, lexicon=self.words) for text in texts]
        masked = [apply_redactions(text, words.redactions) for text, words in zip(texts, checked, strict=True)]
        # A blank text (a tool-call answer's content) gives the models nothing to read, and they read nothing
        # wrongly: the toxicity model scores an empty string 0.74 harassment.
        questions = questions or [""] * len(texts)
        read = [i for i, text in enumerate(masked) if text.strip()]
        read_texts = [masked[i] for i in read]
        own = _placed(ensemble_predict(self.scorers, read_texts) if read else [], read, len(texts))
        in_context = _placed(
            self._answer_scores(read_texts, [questions[i] for i in read]) if read else [], read, len(texts)
        )
        flags = strict or [False] * len(texts)
        return [self._decide(*parts) for parts in zip(texts, own, in_context, checked, flags, strict=True)]

    def rule_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the rule-based checks match `text` (deny-list, secrets and personal data, listed words), whatever
        their action: what a reviewer is shown marked. Model scores have no span."""
        spans = [(start, end) for start, end, _ in self.denylist.spans(text)]
        spans += [(finding.start, finding.end) for finding in find(text)]
        spans += [(finding.start, finding.end) for finding in self.words.find(text)]
        return spans

    def _answer_scores(self, texts: list[str], questions: list[str]) -> list[dict[Category, float]]:
        if not self.answer_scorers:
            return [{} for _ in texts]
        exchanges = [exchange_text(text, question) for text, question in zip(texts, questions, strict=True)]
        return ensemble_predict(self.answer_scorers, exchanges)

    def _decide(
        self,
        text: str,
        own: dict[Category, float],
        in_context: dict[Category, float],
        words: Verdict,
        is_strict: bool,
    ) -> Assessment:
        sensitive = self.sensitive_data.check(text, layer=LAYER)
        denied = self.denylist.check(text)
        models = [
            self.thresholds.decide(own, layer=LAYER, reason="model"),
            self.answer_thresholds.decide(in_context, layer=LAYER, reason="answer"),
        ]
        merged = max_scores([own, in_context])
        if is_strict:
            models.append(self.strict_thresholds.decide(merged, layer=LAYER, reason="strict"))
        verdict = strongest([denied, *models, sensitive, words], layer=LAYER)
        rules = strongest([denied, sensitive, words], layer=LAYER)
        # Secrets and personal data first: a word inside an email address is hidden by its placeholder.
        redactions = merge_redactions(sensitive.redactions, words.redactions)
        if verdict.action is not Action.BLOCK and redactions:
            verdict = replace(verdict, reasons=verdict.reasons + redaction_reasons(redactions), redactions=redactions)
        return Assessment(verdict, merged, rules)


def _placed(scores: list[dict[Category, float]], rows: list[int], n: int) -> list[dict[Category, float]]:
    """Scores of some of n rows put back in their places; the other rows have none."""
    placed: list[dict[Category, float]] = [{} for _ in range(n)]
    for row, row_scores in zip(rows, scores, strict=True):
        placed[row] = row_scores
    return placed
