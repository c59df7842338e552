"""Detection metrics for `safeserve eval`: labelled datasets, recall, false-positive rate, threshold sweeps and
latency percentiles. Pure functions, no Ray and no models.

A dataset is JSON Lines, one `{"text", "label"}` object per line with an optional `source` and `category` (and,
for an output row, the `question` the text answers, which the Moderator reads it with). The
label says the side: `attack`/`benign` rows are inputs (screened before generation), `unsafe`/`safe` rows are
outputs (moderated); one file holds one side. "Positive" below means attack or unsafe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

INPUT, OUTPUT = "input", "output"
LABELS = {"attack": (INPUT, True), "benign": (INPUT, False), "unsafe": (OUTPUT, True), "safe": (OUTPUT, False)}
# Thresholds of the sweep: 0.30, 0.35, ..., 0.95.
SWEEP_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(14))
UNSPECIFIED = "(unspecified)"


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    label: str
    source: str | None = None
    category: str | None = None
    question: str | None = None

    @property
    def positive(self) -> bool:
        return LABELS[self.label][1]


def _parse_row(raw: str, line: int) -> Row:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"line {line}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"line {line}: expected a JSON object with 'text' and 'label'")
    text, label = data.get("text"), data.get("label")
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"line {line}: 'text' must be a non-empty string")
    if label not in LABELS:
        raise DatasetError(f"line {line}: 'label' must be one of {', '.join(LABELS)} (got {label!r})")
    for field in ("source", "category", "question"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise DatasetError(f"line {line}: '{field}' must be a string")
    return Row(line, text, label, data.get("source"), data.get("category"), data.get("question"))


def parse_dataset(lines: Sequence[str]) -> tuple[str, list[Row]]:
    """The side (`input` or `output`) and the rows of a dataset's lines; blank lines are skipped."""
    rows: list[Row] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        row = _parse_row(raw, number)
        if rows and LABELS[row.label][0] != LABELS[rows[0].label][0]:
            first = rows[0]
            raise DatasetError(
                f"line {number}: label '{row.label}' is {LABELS[row.label][0]}-side, but line {first.line} "
                f"('{first.label}') is {LABELS[first.label][0]}-side; put input rows (attack/benign) and "
                "output rows (unsafe/safe) in separate files"
            )
        rows.append(row)
    if not rows:
        raise DatasetError("no rows")
    return LABELS[rows[0].label][0], rows


def load_dataset(path: Path) -> tuple[str, list[Row]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    try:
        return parse_dataset(lines)
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from exc


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def recall(positive: Sequence[bool], flagged: Sequence[bool]) -> float | None:
    """Share of positive rows flagged; None without positive rows."""
    return _share([f for p, f in zip(positive, flagged, strict=True) if p])


def false_positive_rate(positive: Sequence[bool], flagged: Sequence[bool]) -> float | None:
    """Share of negative rows flagged; None without negative rows."""
    return _share([f for p, f in zip(positive, flagged, strict=True) if not p])


def rates(positive: Sequence[bool], flagged: Sequence[bool]) -> dict:
    return {
        "rows": len(positive),
        "positives": sum(positive),
        "negatives": len(positive) - sum(positive),
        "flagged": sum(flagged),
        "recall": recall(positive, flagged),
        "false_positive_rate": false_positive_rate(positive, flagged),
    }


def grouped_rates(keys: Sequence[str | None], positive: Sequence[bool], flagged: Sequence[bool]) -> dict[str, dict]:
    """`rates` per key (rows without one under "(unspecified)"), keys sorted."""
    groups: dict[str, tuple[list[bool], list[bool]]] = {}
    for key, p, f in zip(keys, positive, flagged, strict=True):
        ps, fs = groups.setdefault(UNSPECIFIED if key is None else key, ([], []))
        ps.append(p)
        fs.append(f)
    return {key: rates(*groups[key]) for key in sorted(groups)}


def sweep(
    positive: Sequence[bool], scores: Sequence[float], thresholds: Sequence[float] = SWEEP_THRESHOLDS
) -> list[dict]:
    """Recall and false-positive rate if a row were flagged exactly when its score is at or above each threshold."""
    points = []
    for threshold in thresholds:
        flagged = [score >= threshold for score in scores]
        points.append(
            {
                "threshold": threshold,
                "recall": recall(positive, flagged),
                "false_positive_rate": false_positive_rate(positive, flagged),
            }
        )
    return points


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Sequence[float]) -> dict:
    """p50/p95/max in milliseconds."""
    as_ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": percentile(as_ms, 50),
        "p95_ms": percentile(as_ms, 95),
        "max_ms": max(as_ms, default=None),
    }
