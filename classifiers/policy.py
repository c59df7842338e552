"""Policy as data: the pydantic models for thresholds and pattern rules that live in configs/.

Each category has its own bands: a score at or above `block` blocks, at or above `review` goes to human
review, anything lower is allowed. Bands are validated so that a typo in a config fails at start-up.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict


class Bands(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review: float = Field(0.5, ge=0.0, le=1.0)
    block: float = Field(0.8, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.review > self.block:
            raise ValueError(f"review threshold {self.review} is above block threshold {self.block}")
        return self

    def action(self, score: float) -> Action:
        if score >= self.block:
            return Action.BLOCK
        if score >= self.review:
            return Action.REVIEW
        return Action.ALLOW


class ThresholdPolicy(BaseModel):
    """Per-category bands with a default for categories that have none of their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Bands = Bands()
    categories: dict[Category, Bands] = Field(default_factory=dict)

    def bands(self, category: Category) -> Bands:
        return self.categories.get(category, self.default)

    def decide(self, scores: dict[Category, float], layer: str, reason: str) -> Verdict:
        """The most severe action over all categories; ties on action go to the higher score."""
        actions = {category: self.bands(category).action(score) for category, score in scores.items()}
        flagged = frozenset(category for category, action in actions.items() if action is not Action.ALLOW)
        if not flagged:
            return Verdict(layer=layer, scores=dict(scores))
        worst = max(flagged, key=lambda category: (actions[category].rank, scores[category]))
        return Verdict(
            layer=layer,
            action=actions[worst],
            category=worst,
            score=scores[worst],
            scores=dict(scores),
            flagged=flagged,
            reasons=tuple(f"{reason}:{category}={scores[category]:.3f}" for category in sorted(flagged)),
        )


_REGEX_SYNTAX = re.compile(r"[\\.^$*+?{}\[\]|()]")


class PatternRule(BaseModel):
    """A regular expression that decides `category` with `action` wherever it matches (case-insensitive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    category: Category
    action: Action = Action.BLOCK
    name: str | None = None

    @property
    def phrase(self) -> str | None:
        """The plain phrase the pattern spells, optionally between `\\b`s (what constrained decoding can ban
        outright); None for a pattern that uses any other regular-expression syntax."""
        core = self.pattern.removeprefix(r"\b").removesuffix(r"\b")
        return core if core.strip() and not _REGEX_SYNTAX.search(core) else None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return pattern
