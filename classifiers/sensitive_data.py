"""Secrets and personal data in text: where they are, what kind they are, and what the policy does with them.

`find` returns non-overlapping spans; each candidate from a regular expression is confirmed by a check
where the format has one (Luhn for payment cards, mod-97 for IBANs, the invalid SSN ranges, the allowed
UK National Insurance prefixes, digit counts for phone numbers), so order numbers, version strings, UUIDs,
git SHAs, ISBNs, dates and prices are left alone. The same definitions serve redaction of stored excerpts
(`classifiers/redaction.py`) and the output policy (`SensitiveDataPolicy`, in the Moderator's config).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from classifiers.taxonomy import Category
from classifiers.verdict import Action, Redaction, Verdict, apply_redactions


class Kind(StrEnum):
    # Secrets
    PRIVATE_KEY = "private_key"
    AWS_ACCESS_KEY = "aws_access_key"
    OPENAI_KEY = "openai_key"
    GITHUB_TOKEN = "github_token"
    SLACK_TOKEN = "slack_token"
    JWT = "jwt"
    SAFESERVE_KEY = "safeserve_key"
    # Personal data
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    SSN = "ssn"
    UK_NI = "uk_ni"
    IBAN = "iban"


SECRET_KINDS: frozenset[Kind] = frozenset(
    {
        Kind.PRIVATE_KEY,
        Kind.AWS_ACCESS_KEY,
        Kind.OPENAI_KEY,
        Kind.GITHUB_TOKEN,
        Kind.SLACK_TOKEN,
        Kind.JWT,
        Kind.SAFESERVE_KEY,
    }
)


def category(kind: Kind) -> Category:
    return Category.SECRETS if kind in SECRET_KINDS else Category.PRIVACY


def placeholder(kind: Kind) -> str:
    """What a redacted span reads as: `[secret]` for every secret, `[email]`, `[card]`, ... otherwise."""
    return "[secret]" if kind in SECRET_KINDS else f"[{kind}]"


@dataclass(frozen=True)
class Finding:
    kind: Kind
    start: int
    end: int

    @property
    def category(self) -> Category:
        return category(self.kind)

    def redaction(self) -> Redaction:
        return Redaction(str(self.kind), self.category, self.start, self.end, placeholder(self.kind))


# --- checks -------------------------------------------------------------------------------------------------


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return bool(digits) and total % 10 == 0


_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|35|6(?:011|5|4[4-9])")


def _card(match: re.Match[str]) -> bool:
    number = _digits(match.group())
    separators = {c for c in match.group() if not c.isdigit()}
    return (
        13 <= len(number) <= 19
        and len(separators) <= 1
        and _CARD_PREFIX.match(number) is not None
        and luhn_valid(number)
    )


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban(match: re.Match[str]) -> bool:
    return iban_valid(match.group())


def _ssn(match: re.Match[str]) -> bool:
    area, group, serial = match.group("area"), match.group("group"), match.group("serial")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _phone(low: int, high: int) -> Callable[[re.Match[str]], bool]:
    return lambda match: low <= len(_digits(match.group())) <= high


def _uk_national_phone(match: re.Match[str]) -> bool:
    text = match.group()
    return 10 <= len(_digits(text)) <= 11 and any(not c.isdigit() for c in text)


def _always(match: re.Match[str]) -> bool:
    return True


# --- patterns -----------------------------------------------------------------------------------------------

_NUM_BEFORE = r"(?<![\w+.-])"  # a number starts at neither a word, a sign, a decimal point nor a hyphen
_NUM_AFTER = r"(?![\w-]|\.\d)"

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<label>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
    r"(?:[\s\S]*?-----END (?P=label)-----|(?:\s*[A-Za-z0-9+/=]{16,})*)"  # unterminated: its base64 lines
)

# Order matters: the first detector to claim a character keeps it, so secrets go before personal data and
# the specific personal-data formats before phone numbers.
_DETECTORS: tuple[tuple[Kind, re.Pattern[str], Callable[[re.Match[str]], bool]], ...] = (
    (Kind.PRIVATE_KEY, _PRIVATE_KEY, _always),
    (Kind.SAFESERVE_KEY, re.compile(r"(?<![\w-])ss-[0-9a-f]{12}-[A-Za-z0-9_-]{32,}"), _always),
    (Kind.AWS_ACCESS_KEY, re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"), _always),
    (Kind.OPENAI_KEY, re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), _always),
    (Kind.GITHUB_TOKEN, re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"), _always),
    (Kind.SLACK_TOKEN, re.compile(r"\bxox[abp]-[A-Za-z0-9-]{10,}"), _always),
    (Kind.JWT, re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), _always),
    (Kind.CARD, re.compile(_NUM_BEFORE + r"\d(?:[ -]?\d){12,18}" + _NUM_AFTER), _card),
    (Kind.IBAN, re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), _iban),
    (
        Kind.SSN,
        re.compile(_NUM_BEFORE + r"(?P<area>\d{3})(?P<sep>[- ])(?P<group>\d{2})(?P=sep)(?P<serial>\d{4})" + _NUM_AFTER),
        _ssn,
    ),
    (
        Kind.UK_NI,
        re.compile(r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        _always,
    ),
    (
        Kind.EMAIL,
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        _always,
    ),
    (
        Kind.PHONE,  # international: +44 20 7946 0958, +1 (415) 555-2671, +33 1 23 45 67 89, +14155552671
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}" + _NUM_AFTER),
        _phone(8, 15),
    ),
    (
        Kind.PHONE,  # North American: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199
        re.compile(_NUM_BEFORE + r"(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}" + _NUM_AFTER),
        _always,
    ),
    (
        Kind.PHONE,  # UK national: 020 7946 0958, 07700 900123, 01632 960001, (020) 7946 0958
        re.compile(r"(?:(?<![\w+.(-])0\d{2,4}|\(0\d{2,4}\))[ -]?\d{3,4}[ -]?\d{3,4}" + _NUM_AFTER),
        _uk_national_phone,
    ),
)


# The start of a secret or a number that may still be growing at the end of a streamed text: a detector sees
# only whole spans, and a token can be a single digit, so a stream must not release such a tail before it ends.
_OPEN_TAIL = re.compile(
    r"(?:(?<![\w-])(?:sk-|ss-|gh[pousr]_|github_pat_|xox[abp]-|AKIA|ASIA|ABIA|ACCA|eyJ|-----BEGIN)[\w.+/=-]*"
    r"|\+?\(?\d(?:[\d ().-]*\d)?)$"
)
OPEN_DIGITS = 4  # a trailing run of fewer digits is left alone: years, counts, list numbers


def open_tail_start(text: str) -> int | None:
    """Where a secret's known prefix, or a run of `OPEN_DIGITS` or more digits, that reaches the end of `text`
    starts; None if the text ends in neither."""
    match = _OPEN_TAIL.search(text)
    if match is None:
        return None
    tail = match.group()
    if tail[:1].isdigit() or tail[:1] in "+(":
        return match.start() if sum(c.isdigit() for c in tail) >= OPEN_DIGITS else None
    return match.start()


def find(text: str) -> list[Finding]:
    """Every secret and piece of personal data in `text`, as non-overlapping spans in text order."""
    taken: list[Finding] = []
    for kind, pattern, valid in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if start == end or not valid(match):
                continue
            if any(start < other.end and other.start < end for other in taken):
                continue
            taken.append(Finding(kind, start, end))
    return sorted(taken, key=lambda finding: finding.start)


def redact_all(text: str) -> str:
    """Every finding replaced by its placeholder, whatever the policy: for text that is stored or shown."""
    return apply_redactions(text, [f.redaction() for f in find(text)])


# --- policy -------------------------------------------------------------------------------------------------


class SensitiveAction(StrEnum):
    ALLOW = "allow"
    REDACT = "redact"
    BLOCK = "block"


DEFAULT_ACTIONS: dict[Kind, SensitiveAction] = {
    **{kind: SensitiveAction.BLOCK for kind in SECRET_KINDS},
    **{kind: SensitiveAction.REDACT for kind in (Kind.EMAIL, Kind.PHONE, Kind.CARD, Kind.SSN, Kind.UK_NI, Kind.IBAN)},
}


class SensitiveDataPolicy(BaseModel):
    """What the output side does with each kind: `block` the answer, `redact` the span, or `allow` it.

    Kinds left out of `actions` keep their default (secrets block, personal data is redacted).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: dict[Kind, SensitiveAction] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))

    def action(self, kind: Kind) -> SensitiveAction:
        return self.actions.get(kind, DEFAULT_ACTIONS[kind])

    def check(self, text: str, layer: str) -> Verdict:
        """A BLOCK verdict when a `block` kind is present; otherwise an allow verdict whose `redactions` list
        the `redact` spans (the Moderator adds their `redacted:<kind>` reasons once it knows it does not block).
        Either way `scores` holds 1.0 for each category found, `allow` kinds excepted."""
        findings = [(finding, self.action(finding.kind)) for finding in find(text)]
        blocked = [finding for finding, action in findings if action is SensitiveAction.BLOCK]
        redacted = [finding for finding, action in findings if action is SensitiveAction.REDACT]
        scores = {finding.category: 1.0 for finding in blocked + redacted}
        redactions = tuple(f.redaction() for f in redacted)
        if blocked:
            first = blocked[0]
            return Verdict(
                layer=layer,
                action=Action.BLOCK,
                category=first.category,
                score=1.0,
                scores=scores,
                flagged=frozenset(finding.category for finding in blocked),
                reasons=tuple(dict.fromkeys(f"sensitive:{finding.kind}" for finding in blocked)),
            )
        return Verdict(layer=layer, scores=scores, redactions=redactions)


def redaction_reasons(redactions: tuple[Redaction, ...]) -> tuple[str, ...]:
    """`redacted:<kind>` once per kind, for incident records."""
    return tuple(dict.fromkeys(f"redacted:{redaction.kind}" for redaction in redactions))
