"""The flagged spans of a review item's text, as segments a template renders (escaped) with <mark> around."""

from __future__ import annotations

from classifiers.lexicon import default_lexicon
from classifiers.patterns import PatternSet


def flagged_spans(text: str, patterns: PatternSet) -> list[tuple[int, int]]:
    """Where a deny pattern or a listed word matches the text."""
    spans = [(start, end) for start, end, _ in patterns.spans(text)]
    spans += [(finding.start, finding.end) for finding in default_lexicon().find(text)]
    return spans


def segments(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, flagged) in order; overlapping spans are merged."""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, cursor = [], 0
    for start, end in merged:
        if start > cursor:
            pieces.append((text[cursor:start], False))
        pieces.append((text[start:end], True))
        cursor = end
    if cursor < len(text):
        pieces.append((text[cursor:], False))
    return pieces
