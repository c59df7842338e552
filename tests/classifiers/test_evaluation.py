"""Detection metrics on small hand-computed cases, and dataset parsing errors that name the line."""

from __future__ import annotations

import json

import pytest

from classifiers.evaluation import (
    SWEEP_THRESHOLDS,
    DatasetError,
    false_positive_rate,
    grouped_rates,
    latency_summary,
    parse_dataset,
    percentile,
    rates,
    recall,
    sweep,
)

POSITIVE = [True, True, True, True, False, False, False]
FLAGGED = [True, True, False, True, False, True, False]


def test_recall_and_false_positive_rate() -> None:
    assert recall(POSITIVE, FLAGGED) == pytest.approx(3 / 4)
    assert false_positive_rate(POSITIVE, FLAGGED) == pytest.approx(1 / 3)
    assert rates(POSITIVE, FLAGGED) == {
        "rows": 7,
        "positives": 4,
        "negatives": 3,
        "flagged": 4,
        "recall": pytest.approx(0.75),
        "false_positive_rate": pytest.approx(1 / 3),
    }


def test_rates_without_a_class_are_none() -> None:
    assert recall([False, False], [True, False]) is None
    assert false_positive_rate([True], [True]) is None


def test_grouped_rates_put_missing_keys_apart() -> None:
    groups = grouped_rates(["a", None, "a", "b"], [True, True, False, False], [True, False, True, False])
    assert list(groups) == ["(unspecified)", "a", "b"]
    assert groups["a"]["recall"] == 1.0 and groups["a"]["false_positive_rate"] == 1.0
    assert groups["(unspecified)"]["recall"] == 0.0 and groups["(unspecified)"]["false_positive_rate"] is None
    assert groups["b"]["false_positive_rate"] == 0.0 and groups["b"]["recall"] is None


def test_sweep_flags_scores_at_or_above_the_threshold() -> None:
    positive = [True, True, True, False, False]
    scores = [0.9, 0.5, 0.2, 0.5, 0.1]
    points = sweep(positive, scores, thresholds=[0.1, 0.5, 0.6, 1.0])
    assert [(p["threshold"], p["recall"], p["false_positive_rate"]) for p in points] == [
        (0.1, 1.0, 1.0),
        (0.5, pytest.approx(2 / 3), 0.5),
        (0.6, pytest.approx(1 / 3), 0.0),
        (1.0, 0.0, 0.0),
    ]


def test_default_sweep_thresholds() -> None:
    assert SWEEP_THRESHOLDS[0] == 0.3 and SWEEP_THRESHOLDS[-1] == 0.95 and len(SWEEP_THRESHOLDS) == 14
    assert 0.8 in SWEEP_THRESHOLDS


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)  # rank 2.85: 3 + 0.85 * (4 - 3)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([0.001, 0.003, 0.002])
    assert summary["p50_ms"] == pytest.approx(2.0) and summary["max_ms"] == pytest.approx(3.0)
    assert summary["p95_ms"] == pytest.approx(2.9)


def _lines(*rows: dict | str) -> list[str]:
    return [row if isinstance(row, str) else json.dumps(row) for row in rows]


def test_parse_dataset_reads_the_side_and_optional_fields() -> None:
    side, rows = parse_dataset(
        _lines({"text": "hi", "label": "benign"}, "", {"text": "x", "label": "attack", "source": "s", "category": "c"})
    )
    assert side == "input"
    assert [(r.line, r.positive, r.source, r.category) for r in rows] == [(1, False, None, None), (3, True, "s", "c")]
    assert parse_dataset(_lines({"text": "ok", "label": "safe"}))[0] == "output"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            _lines({"text": "a", "label": "attack"}, {"text": "b", "label": "unsafe"}),
            "line 2: label 'unsafe' is output",
        ),
        (_lines({"text": "a", "label": "attack"}, "{not json"), "line 2: not valid JSON"),
        (_lines({"text": "a", "label": "toxic"}), "line 1: 'label' must be one of"),
        (_lines({"text": "a", "label": "safe"}, {"label": "safe"}), "line 2: 'text' must be a non-empty string"),
        (_lines("[1, 2]"), "line 1: expected a JSON object"),
        (_lines({"text": "a", "label": "safe", "source": 3}), "line 1: 'source' must be a string"),
        (["", "  "], "no rows"),
    ],
)
def test_bad_datasets_name_the_line(lines: list[str], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_dataset(lines)
