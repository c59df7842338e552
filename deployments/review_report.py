"""The threshold report: how reviewers decided what each safety layer, category and score band sent them.

A review band whose items are nearly all approved costs reviewers time for little (its `review` threshold could
rise); one whose items are mostly rejected lets through what should be blocked (its `block` threshold could
fall). The report covers the items queued since a time; every decision on them counts, so an item escalated
and then approved counts once in each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, computed_field

from deployments.review_store import ReviewItem

BAND_WIDTH = 0.1


class DecisionCounts(BaseModel):
    approve: int = 0
    reject: int = 0
    escalate: int = 0

    @computed_field
    @property
    def total(self) -> int:
        return self.approve + self.reject + self.escalate

    @computed_field
    @property
    def approve_rate(self) -> float:
        return round(self.approve / self.total, 3) if self.total else 0.0

    @computed_field
    @property
    def reject_rate(self) -> float:
        return round(self.reject / self.total, 3) if self.total else 0.0

    @computed_field
    @property
    def escalate_rate(self) -> float:
        return round(self.escalate / self.total, 3) if self.total else 0.0


class ThresholdReport(BaseModel):
    since: float  # items queued since then (epoch seconds)
    decisions: int
    by_layer: dict[str, DecisionCounts]
    by_category: dict[str, DecisionCounts]
    by_score_band: dict[str, DecisionCounts]


def score_band(score: float) -> str:
    """`0.5-0.6` for a score of 0.55; a score of 1.0 falls in the top band."""
    bands = round(1 / BAND_WIDTH)
    lower = min(int(score * bands), bands - 1) / bands
    return f"{lower:.1f}-{lower + BAND_WIDTH:.1f}"


def threshold_report(items: Iterable[ReviewItem], since: float) -> ThresholdReport:
    """Counts of the decisions taken on `items` (those queued since `since`), grouped three ways."""
    groups: dict[str, dict[str, Counter]] = {"layer": {}, "category": {}, "band": {}}
    decisions = 0
    for item in items:
        keys = {"layer": item.layer, "category": item.category or "none", "band": score_band(item.score)}
        for record in item.decisions:
            decisions += 1
            for group, key in keys.items():
                groups[group].setdefault(key, Counter())[record.decision] += 1

    def counts(group: str) -> dict[str, DecisionCounts]:
        return {key: DecisionCounts(**counter) for key, counter in sorted(groups[group].items())}

    return ThresholdReport(
        since=since,
        decisions=decisions,
        by_layer=counts("layer"),
        by_category=counts("category"),
        by_score_band=counts("band"),
    )
