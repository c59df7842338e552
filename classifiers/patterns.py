"""Deny patterns: regular expressions that decide a category on sight, cheaply enough to run in the ingress."""

from __future__ import annotations

import re
from dataclasses import dataclass

from classifiers.policy import PatternRule
from classifiers.taxonomy import Category
from classifiers.verdict import Verdict, strongest


@dataclass(frozen=True)
class _CompiledRule:
    rule: PatternRule
    regex: re.Pattern[str]


class PatternSet:
    """A compiled list of `PatternRule`s; `check` returns the strongest verdict over all matches."""

    def __init__(self, rules: list[PatternRule], layer: str) -> None:
        self.layer = layer
        self._rules = [_CompiledRule(rule, re.compile(rule.pattern, re.IGNORECASE)) for rule in rules]

    def check(self, text: str) -> Verdict:
        verdicts = [
            Verdict(
                layer=self.layer,
                action=compiled.rule.action,
                category=compiled.rule.category,
                score=1.0,
                scores={compiled.rule.category: 1.0},
                flagged=frozenset({compiled.rule.category}),
                reasons=(f"pattern:{compiled.rule.name or compiled.rule.pattern}",),
            )
            for compiled in self._rules
            if compiled.regex.search(text)
        ]
        return strongest(verdicts, self.layer)

    def spans(self, text: str) -> list[tuple[int, int, Category]]:
        """Where each rule matched, for redaction and for highlighting in review."""
        return [
            (match.start(), match.end(), compiled.rule.category)
            for compiled in self._rules
            for match in compiled.regex.finditer(text)
        ]
