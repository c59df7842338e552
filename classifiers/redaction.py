"""Redaction of personal data and secrets in text that we store or show (incident excerpts, review items)."""

from __future__ import annotations

import re

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("[email]", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")),
    ("[secret]", re.compile(r"\b(?:sk|pk|rk|ss|ghp|gho|xox[abp]|AKIA)[-_A-Za-z0-9]{12,}\b")),
    ("[card]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("[phone]", re.compile(r"(?<!\w)\+?\d[\d ()./-]{7,}\d\b")),
)


def redact(text: str) -> str:
    for placeholder, pattern in _RULES:
        text = pattern.sub(placeholder, text)
    return text


def excerpt(text: str, limit: int) -> str:
    """A short redacted excerpt: redaction first, so a cut never leaves half a secret behind."""
    redacted = redact(text)
    return redacted if len(redacted) <= limit else redacted[: max(limit - 1, 0)] + "…"
