"""What a safety layer says about a text: an action, the deciding category and score, and the evidence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from classifiers.taxonomy import Category


class Action(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Action.ALLOW: 0, Action.REVIEW: 1, Action.BLOCK: 2}


@dataclass(frozen=True)
class Redaction:
    """A span of the checked text to replace with `placeholder` before delivery (`kind`: e.g. "email")."""

    kind: str
    category: Category
    start: int
    end: int
    placeholder: str


@dataclass(frozen=True)
class Verdict:
    """One layer's decision.

    `category`/`score` are the deciding ones; `flagged` lists every category at or above its review band;
    `scores` holds every category the layer scored; `reasons` is human-readable evidence. `redactions` are
    spans of the checked text to replace before it is delivered; only the Moderator sets them, on a verdict
    that does not block (`strongest` does not carry them: the Moderator attaches them after merging).
    """

    layer: str
    action: Action = Action.ALLOW
    category: Category | None = None
    score: float = 0.0
    scores: dict[Category, float] = field(default_factory=dict)
    flagged: frozenset[Category] = frozenset()
    reasons: tuple[str, ...] = ()
    redactions: tuple[Redaction, ...] = ()


def strongest(verdicts: list[Verdict], layer: str) -> Verdict:
    """Merge several verdicts into one: the most severe action wins, ties go to the higher score.

    The merged verdict names the deciding member's layer (or `layer` when all allow); category scores
    are merged by maximum, so the result still shows everything any member saw.
    """
    scores: dict[Category, float] = {}
    flagged: set[Category] = set()
    reasons: list[str] = []
    for verdict in verdicts:
        flagged |= verdict.flagged
        for category, score in verdict.scores.items():
            scores[category] = max(scores.get(category, 0.0), score)
        reasons.extend(verdict.reasons)
    worst = max(verdicts, key=lambda v: (v.action.rank, v.score), default=Verdict(layer=layer))
    return Verdict(
        layer=worst.layer if worst.action is not Action.ALLOW else layer,
        action=worst.action,
        category=worst.category,
        score=worst.score,
        scores=scores,
        flagged=frozenset(flagged),
        reasons=tuple(reasons),
    )


def apply_redactions(text: str, redactions: Iterable[Redaction]) -> str:
    """`text` with each span replaced by its placeholder (the spans must not overlap)."""
    out: list[str] = []
    cursor = 0
    for redaction in sorted(redactions, key=lambda r: r.start):
        out.append(text[cursor : redaction.start])
        out.append(redaction.placeholder)
        cursor = redaction.end
    out.append(text[cursor:])
    return "".join(out)


def merge_redactions(*groups: Iterable[Redaction]) -> tuple[Redaction, ...]:
    """The redactions of all groups in text order, without overlaps: where spans overlap, the one from the
    earlier group is kept (its placeholder already hides what the later one would)."""
    kept: list[Redaction] = []
    for group in groups:
        for redaction in group:
            if not any(redaction.start < other.end and other.start < redaction.end for other in kept):
                kept.append(redaction)
    return tuple(sorted(kept, key=lambda r: r.start))
