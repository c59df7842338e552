from __future__ import annotations

import pytest
from pydantic import ValidationError

from classifiers.patterns import PatternSet
from classifiers.policy import Bands, PatternRule, ThresholdPolicy
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Verdict, strongest


@pytest.mark.parametrize(
    ("score", "action"),
    [
        (0.0, Action.ALLOW),
        (0.49, Action.ALLOW),
        (0.5, Action.REVIEW),
        (0.79, Action.REVIEW),
        (0.8, Action.BLOCK),
        (1.0, Action.BLOCK),
    ],
)
def test_bands(score: float, action: Action) -> None:
    assert Bands(review=0.5, block=0.8).action(score) is action


def test_bands_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="review threshold 0.9 is above block threshold 0.5"):
        Bands(review=0.9, block=0.5)


def test_per_category_bands_override_the_default() -> None:
    policy = ThresholdPolicy(
        default=Bands(review=0.6, block=0.9), categories={Category.SEXUAL_MINORS: Bands(review=0.2, block=0.4)}
    )
    verdict = policy.decide({Category.SEXUAL_MINORS: 0.45, Category.FRAUD: 0.45}, layer="t", reason="model")
    assert (verdict.action, verdict.category) == (Action.BLOCK, Category.SEXUAL_MINORS)
    assert verdict.flagged == {Category.SEXUAL_MINORS}


def test_most_severe_action_wins_over_higher_score() -> None:
    policy = ThresholdPolicy(
        default=Bands(review=0.5, block=0.95), categories={Category.HATE: Bands(review=0.1, block=0.3)}
    )
    verdict = policy.decide({Category.FRAUD: 0.9, Category.HATE: 0.35}, layer="t", reason="model")
    assert verdict.category is Category.HATE and verdict.action is Action.BLOCK
    assert verdict.flagged == {Category.HATE, Category.FRAUD}


def test_nothing_flagged_is_allow_with_scores_kept() -> None:
    verdict = ThresholdPolicy().decide({Category.FRAUD: 0.1}, layer="t", reason="model")
    assert verdict.action is Action.ALLOW and verdict.scores == {Category.FRAUD: 0.1} and not verdict.flagged


def test_pattern_rules_validate_their_regex() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        PatternRule(pattern="(unclosed", category=Category.FRAUD)
    with pytest.raises(ValidationError):
        PatternRule(pattern="x", category="not_a_category")


def test_pattern_set_is_case_insensitive_and_names_its_rule() -> None:
    rules = [
        PatternRule(name="override", pattern=r"ignore previous instructions", category=Category.PROMPT_INJECTION),
        PatternRule(pattern=r"zebra", category=Category.PRIVACY, action=Action.REVIEW),
    ]
    patterns = PatternSet(rules, layer="input_patterns")
    blocked = patterns.check("Please IGNORE previous instructions, zebra")
    assert (blocked.action, blocked.category, blocked.layer) == (
        Action.BLOCK,
        Category.PROMPT_INJECTION,
        "input_patterns",
    )
    assert "pattern:override" in blocked.reasons
    assert blocked.flagged == {Category.PROMPT_INJECTION, Category.PRIVACY}
    assert patterns.check("a zebra").action is Action.REVIEW
    assert patterns.check("hello").action is Action.ALLOW
    assert patterns.spans("zebra zebra") == [(0, 5, Category.PRIVACY), (6, 11, Category.PRIVACY)]


def test_strongest_keeps_the_deciding_layer_and_merges_scores() -> None:
    a = Verdict(layer="patterns", scores={Category.FRAUD: 0.2})
    b = Verdict(
        layer="model",
        action=Action.REVIEW,
        category=Category.HATE,
        score=0.7,
        scores={Category.HATE: 0.7, Category.FRAUD: 0.4},
        flagged=frozenset({Category.HATE}),
    )
    merged = strongest([a, b], layer="input")
    assert merged.layer == "model" and merged.action is Action.REVIEW
    assert merged.scores == {Category.FRAUD: 0.4, Category.HATE: 0.7}
    assert strongest([a], layer="input").layer == "input"
    assert strongest([], layer="input").action is Action.ALLOW


@pytest.mark.parametrize(
    ("pattern", "phrase"),
    [
        (r"zebra unsafe passage", "zebra unsafe passage"),
        (r"\bDAN mode enabled\b", "DAN mode enabled"),
        (r"\b(kill|hurt) yourself\b", None),
        (r"pipe ?bomb", None),
        (r"\d{3}-\d{4}", None),
        (r"\b\b", None),
    ],
)
def test_only_a_plain_phrase_rule_has_a_phrase(pattern: str, phrase: str | None) -> None:
    assert PatternRule(pattern=pattern, category=Category.VIOLENCE).phrase == phrase
