"""Redaction of personal data and secrets in text that we store or show (incident excerpts, review items).

Every kind that `classifiers.sensitive_data` finds is masked here, whatever the output policy says about it:
an `allow` policy decides what a caller may receive, not what SafeServe keeps in its records.
"""

from __future__ import annotations

from classifiers.sensitive_data import redact_all


def redact(text: str) -> str:
    return redact_all(text)


def excerpt(text: str, limit: int) -> str:
    """A short redacted excerpt: redaction first, so a cut never leaves half a secret behind."""
    redacted = redact(text)
    return redacted if len(redacted) <= limit else redacted[: max(limit - 1, 0)] + "…"
