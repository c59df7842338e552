"""Output-side moderation: secrets and personal data, swear words and slurs, a deny-list and ML models in a
cascade, decided by per-category bands.

The cascade. Cheap members read every text in a few hundredths of a millisecond: the rules above, `scorers`
(the profanity model) and the toxicity model's n-gram stage. The dear members read only the texts the cheap
ones are unsure of, the *band*: a toxicity n-gram score strictly inside `band`, or a text that names a group of
people (`route_groups`; classifiers.groups), where hate hides in words an n-gram model of comments does not
know. There the toxicity model's stacked head replaces its n-gram score, and the `members` (production models:
a Hugging Face or ONNX classifier, a Detoxify checkpoint, a safety LLM) add their scores. `Assessment.band` says
which texts went there, so the share can be measured and watched.

Redaction is about what is delivered. A `block` kind in `SensitiveDataPolicy` or a `block` severity in
`LexiconPolicy` blocks like any other layer; what they redact comes back as `Verdict.redactions` on a
verdict that does not block, for the caller to apply (`classifiers.verdict.apply_redactions`). The `scorers`
(the profanity model) read the text with the lexicon's masks applied: it finds swear words, so a word left in
would make it block the very answer the mask was meant to deliver. The toxicity model, the members and the
answer check read the text as generated: whether a message insults, threatens or demeans someone is in how
it says it, swear words included ("f*** you, idiot" is an insult however it is delivered).

`answer_scorers` (the intent ensemble as `classifiers.answer_intent.HarmfulAnswerScorer`) read each text in the
context of the question it answers, when the caller gives one: harmful instructions are recognised by what
they answer as much as by their own words. Their scores are calibrated unlike the text models', so they are
decided by bands of their own (`answer_thresholds`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from classifiers.answer_intent import HarmfulAnswerScorer, exchange_text
from classifiers.groups import names_a_group
from classifiers.lexicon import LexiconPolicy, default_lexicon
from classifiers.patterns import PatternSet
from classifiers.policy import ThresholdPolicy
from classifiers.scoring import Scorer, ensemble_predict, max_scores
from classifiers.sensitive_data import SensitiveDataPolicy, find, redaction_reasons
from classifiers.taxonomy import Category
from classifiers.toxicity import ToxicityModel, category_scores
from classifiers.verdict import Action, Verdict, apply_redactions, merge_redactions, strongest

LAYER = "moderator"
# The toxicity n-gram scores whose texts go to the band: chosen on the output dev set (bench/moderator_policy.py),
# never on the test set.
DEFAULT_BAND = (0.2, 0.6)

# (texts, the questions they answer) -> per text its category scores, or None where the member gave no verdict.
MemberFn = Callable[[list[str], list[str]], list[dict[Category, float] | None]]


@dataclass(frozen=True)
class Member:
    """A model the Moderator asks about the band's texts (`stage` "band") or every text ("all").

    `on_error`: the action for a text the member could not judge (a safety LLM that timed out); None means a
    failure is the Moderator's, and fails the batch (the gateway then answers as its fail mode says)."""

    name: str
    score: MemberFn
    stage: Literal["band", "all"] = "band"
    on_error: Action | None = None


def text_member(name: str, scorer: Scorer, stage: Literal["band", "all"] = "band") -> Member:
    """A `Scorer` of texts alone as a member (the question is not shown to it)."""
    return Member(name, lambda texts, _questions: scorer.predict(texts), stage)


@dataclass(frozen=True)
class Assessment:
    """The Moderator's verdict on one text, with its parts: the ML scores (of the text with the lexicon's
    masks applied) and the rule-based checks merged (deny-list, secrets or personal data, lexicon)."""

    verdict: Verdict
    model_scores: dict[Category, float]
    rules: Verdict
    band: bool = False  # read by the band's members (the toxicity head, production members)
    answer_band: bool = False  # read by the answer check's embedding members

    @property
    def dear(self) -> bool:
        """Whether any dear member read the text: what the cascade's share counts."""
        return self.band or self.answer_band

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
        *,
        toxicity: ToxicityModel | None = None,
        band: tuple[float, float] = DEFAULT_BAND,
        route_groups: bool = True,
        members: list[Member] | None = None,
    ) -> None:
        self.denylist = denylist
        self.scorers = scorers
        self.toxicity = toxicity
        self.band = band
        self.route_groups = route_groups
        self.members = members or []
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
        # wrongly: a toxicity model scored an empty string 0.74 harassment.
        questions = questions or [""] * len(texts)
        read = [i for i, text in enumerate(masked) if text.strip()]
        read_texts = [texts[i] for i in read]
        read_questions = [questions[i] for i in read]
        own, band, failed = (
            self._text_scores(read_texts, [masked[i] for i in read], read_questions) if read else ([], [], [])
        )
        answer, embedded = self._answer_scores(read_texts, read_questions) if read else ([], [])
        in_context = _placed(answer, read, len(texts))
        own_placed = _placed(own, read, len(texts))
        in_band, answer_band = [False] * len(texts), [False] * len(texts)
        errors: list[Verdict | None] = [None] * len(texts)
        for row, went, read_by_answer_check, error in zip(read, band, embedded, failed, strict=True):
            in_band[row], answer_band[row], errors[row] = went, read_by_answer_check, error
        flags = strict or [False] * len(texts)
        assessments = [
            self._decide(*parts) for parts in zip(texts, own_placed, in_context, checked, flags, errors, strict=True)
        ]
        return [
            replace(assessment, band=b, answer_band=a)
            for assessment, b, a in zip(assessments, in_band, answer_band, strict=True)
        ]

    def in_band(self, texts: list[str], toxic: np.ndarray) -> np.ndarray:
        """The texts the band's members read: the toxicity n-gram score strictly inside `band`, or (with
        `route_groups`) a text that names a group of people. Without a toxicity model, every text."""
        if self.toxicity is None:
            return np.ones(len(texts), dtype=bool)
        unsure = (toxic > self.band[0]) & (toxic < self.band[1])
        if self.route_groups:
            unsure |= np.array([names_a_group(text) for text in texts], dtype=bool)
        return unsure

    def _text_scores(
        self, texts: list[str], masked: list[str], questions: list[str]
    ) -> tuple[list[dict[Category, float]], list[bool], list[Verdict | None]]:
        """Per text: the text models' scores, whether it went to the band, and the verdict a member's failure on
        it calls for (None: none failed). `masked`: the texts with the lexicon's masks, for `scorers`."""
        rows: list[list[dict[Category, float]]] = [[scores] for scores in ensemble_predict(self.scorers, masked)]
        toxic = self.toxicity.score(texts) if self.toxicity is not None else np.zeros(len(texts))
        band = self.in_band(texts, toxic)
        chosen = np.flatnonzero(band)
        if self.toxicity is not None:
            if self.toxicity.refines and chosen.size:
                toxic[chosen] = self.toxicity.refine([texts[i] for i in chosen], toxic[chosen])
            for row, scores in zip(rows, category_scores(texts, toxic), strict=True):
                row.append(scores)
        failed: list[Verdict | None] = [None] * len(texts)
        for member in self.members:
            picked = chosen if member.stage == "band" else np.arange(len(texts))
            if not picked.size:
                continue
            results = member.score([texts[i] for i in picked], [questions[i] for i in picked])
            for i, result in zip(picked, results, strict=True):
                if result is not None:
                    rows[i].append(result)
                elif member.on_error is not None and member.on_error is not Action.ALLOW:
                    failed[i] = _member_failed(member, rows[i])
                elif member.on_error is None:
                    raise RuntimeError(f"moderation member {member.name} gave no verdict")
        return [max_scores(parts) for parts in rows], [bool(b) for b in band], failed

    def first_stage(self) -> OutputModerator | None:
        """This moderator with its cheap members alone (no encoder, no production members), for another process
        to run: see `ModeratorFirstStage`. None when a member must read every text (`stage: all`) or an answer
        scorer has no n-gram stage: then no text is decided without the dear members."""
        if any(member.stage == "all" for member in self.members):
            return None
        if not all(isinstance(scorer, HarmfulAnswerScorer) for scorer in self.answer_scorers):
            return None
        cheap = copy.copy(self)
        cheap.toxicity = self.toxicity.without_encoder() if self.toxicity is not None else None
        cheap.answer_scorers = [scorer.first_stage() for scorer in self.answer_scorers]
        cheap.members = []
        return cheap

    def rule_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the rule-based checks match `text` (deny-list, secrets and personal data, listed words), whatever
        their action: what a reviewer is shown marked. Model scores have no span."""
        spans = [(start, end) for start, end, _ in self.denylist.spans(text)]
        spans += [(finding.start, finding.end) for finding in find(text)]
        spans += [(finding.start, finding.end) for finding in self.words.find(text)]
        return spans

    def _answer_scores(self, texts: list[str], questions: list[str]) -> tuple[list[dict[Category, float]], list[bool]]:
        """The answer check's scores of each exchange, and whether its cascade's dear members read it."""
        embedded = [False] * len(texts)
        if not self.answer_scorers:
            return [{} for _ in texts], embedded
        exchanges = [exchange_text(text, question) for text, question in zip(texts, questions, strict=True)]
        per_scorer = []
        for scorer in self.answer_scorers:
            if isinstance(scorer, HarmfulAnswerScorer):
                scores, marked = scorer.predict_with_band(exchanges)
                embedded = [a or b for a, b in zip(embedded, marked, strict=True)]
            else:
                scores = scorer.predict(exchanges)
            per_scorer.append(scores)
        return [max_scores([rows[i] for rows in per_scorer]) for i in range(len(texts))], embedded

    def _decide(
        self,
        text: str,
        own: dict[Category, float],
        in_context: dict[Category, float],
        words: Verdict,
        is_strict: bool,
        member_failure: Verdict | None = None,
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
        failures = [member_failure] if member_failure is not None else []
        verdict = strongest([denied, *models, sensitive, words, *failures], layer=LAYER)
        rules = strongest([denied, sensitive, words], layer=LAYER)
        # Secrets and personal data first: a word inside an email address is hidden by its placeholder.
        redactions = merge_redactions(sensitive.redactions, words.redactions)
        if verdict.action is not Action.BLOCK and redactions:
            verdict = replace(verdict, reasons=verdict.reasons + redaction_reasons(redactions), redactions=redactions)
        return Assessment(verdict, merged, rules)


@dataclass(frozen=True)
class ModeratorFirstStage:
    """The Moderator's cheap stage with its policy (`OutputModerator.first_stage`), for the ingress to run in
    process: texts that no dear member would read get here the assessment the Moderator would give them; a batch
    with a text in either band needs the Moderator (None), as does every text when the policy has no first stage
    (`moderator` None). `version` names the Moderator's config and models it was taken from."""

    version: str
    moderator: OutputModerator | None

    def assess(self, texts: list[str], questions: list[str], strict: list[bool]) -> list[Assessment] | None:
        if self.moderator is None:
            return None
        assessments = self.moderator.assess(texts, questions, strict)
        return None if any(assessment.dear for assessment in assessments) else assessments


def _member_failed(member: Member, scores: list[dict[Category, float]]) -> Verdict:
    """The verdict on a text a member could not judge: its `on_error` action, filed under the text's top
    category so far (harassment when nothing scored it)."""
    merged = max_scores(scores)
    category = max(merged, key=merged.get) if merged else Category.HARASSMENT
    return Verdict(
        layer=LAYER,
        action=member.on_error or Action.REVIEW,
        category=category,
        score=merged.get(category, 0.0),
        flagged=frozenset({category}),
        reasons=(f"member_unavailable:{member.name}",),
    )


def _placed(scores: list[dict[Category, float]], rows: list[int], n: int) -> list[dict[Category, float]]:
    """Scores of some of n rows put back in their places; the other rows have none."""
    placed: list[dict[Category, float]] = [{} for _ in range(n)]
    for row, row_scores in zip(rows, scores, strict=True):
        placed[row] = row_scores
    return placed
