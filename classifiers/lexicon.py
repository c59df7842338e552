"""Swear words and slurs in output: which words, how severe, and what the policy does with each severity.

The words and their severities are data (`classifiers/data/lexicon.yaml`, with its provenance). A word is
found only as a whole word (so "Scunthorpe", "assess", "class", "cockpit" or "therapist" never match), and
through the obfuscations a model can be asked for: case, accents, look-alike letters and leetspeak
(`classifiers.normalize`), invisible characters, stretched letters ("fuuuck") and letters spaced out
("s h i t", "f.u.c.k"). All of these are undone character by character, so every finding is a span of the
original text that can be masked ("f***") where it stands.

What cannot be located that way, a word hidden in base64, hex or rot13 (`normalize.views`), is still
found; a policy that would redact it flags it (`unlocated`: review or block) instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from classifiers.normalize import deleet, fold_homoglyphs, views
from classifiers.taxonomy import Category
from classifiers.verdict import Action, Redaction, Verdict

DEFAULT_PATH = Path(__file__).parent / "data" / "lexicon.yaml"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    STRONG = "strong"
    SEVERE = "severe"


@dataclass(frozen=True)
class Entry:
    term: str
    severity: Severity
    category: Category


@dataclass(frozen=True)
class Finding:
    """A listed word at [start, end) of the original text; `original` is the text it was found as."""

    entry: Entry
    start: int
    end: int
    original: str

    @property
    def kind(self) -> str:
        return f"{self.entry.category}:{self.entry.severity}"

    def redaction(self) -> Redaction:
        return Redaction(self.kind, self.entry.category, self.start, self.end, mask(self.original))


def mask(word: str) -> str:
    """The first character kept, every other one but whitespace starred: "fuck" -> "f***"."""
    return word[:1] + "".join(c if c.isspace() else "*" for c in word[1:])


# --- the de-obfuscated skeleton, mapped back to the original ------------------------------------------------


@dataclass(frozen=True)
class _Skeleton:
    """The text lower-cased and de-obfuscated character by character; `origin[i]` is the index in the
    original text of the character that skeleton character `i` came from."""

    text: str
    origin: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin[start], self.origin[end - 1] + 1


# "sh!t": an exclamation mark between two letters or digits reads as an i.
_BANG = re.compile(r"(?<=[^\W_])!(?=[^\W_])")


def _skeleton(text: str) -> _Skeleton:
    """NFKD-decomposed, case-folded, accents and invisible characters dropped, look-alike letters folded
    and leetspeak undone; each step maps one character to one, so every character keeps its origin."""
    if text.isascii():  # nothing to decompose or drop: character i comes from character i
        return _Skeleton(_fold(text.lower()), range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if ch.isascii():
            chars.append(ch.lower())
            origin.append(index)
            continue
        if unicodedata.category(ch) == "Cf":
            continue
        for part in unicodedata.normalize("NFKD", ch).casefold():
            if not unicodedata.combining(part):
                chars.append(part)
                origin.append(index)
    return _Skeleton(_fold("".join(chars)), tuple(origin))


def _fold(lowered: str) -> str:
    """Look-alike letters, "!" for i and leetspeak undone, one character for one."""
    return deleet(_BANG.sub("i", fold_homoglyphs(lowered)))


_WORD = re.compile(r"[^\W_]+")
_LATIN_WORD = re.compile(r"[a-z]+")
# Three or more single letters, each separated by one space, dot, dash, underscore or star ("s h i t").
_SPACED = re.compile(r"(?<![^\W_])[a-z](?:[ .\-_*·][a-z](?![^\W_])){2,}")
# One-letter words that may open a spaced-out run without being part of it ("a f u c k i n g ...").
_LEADING_WORDS = frozenset("aiu")


def _runs(word: str) -> tuple[str, tuple[int, ...]]:
    """The word with each run of a letter collapsed to one, and the length of each run."""
    letters: list[str] = []
    lengths: list[int] = []
    for ch in word:
        if letters and letters[-1] == ch:
            lengths[-1] += 1
        else:
            letters.append(ch)
            lengths.append(1)
    return "".join(letters), tuple(lengths)


# --- the lexicon --------------------------------------------------------------------------------------------


class LexiconError(ValueError):
    """The lexicon data is malformed."""


class Lexicon:
    """Listed words, found as whole words in text. A word matches a term when it has the term's letters in
    order, each repeated at least as often as in the term ("fuuuck" is "fuck", "as" is not "ass")."""

    def __init__(self, entries: Iterable[Entry], exceptions: Iterable[str] = ()) -> None:
        self._terms: dict[str, tuple[tuple[int, ...], Entry]] = {}
        for entry in entries:
            if not _LATIN_WORD.fullmatch(entry.term):
                raise LexiconError(f"term {entry.term!r}: only the letters a-z are allowed")
            key, lengths = _runs(entry.term)
            if key in self._terms:
                raise LexiconError(f"terms {self._terms[key][1].term!r} and {entry.term!r} collapse to one word")
            self._terms[key] = (lengths, entry)
        self._exceptions = [re.compile(pattern.replace(" ", r"\s+")) for pattern in exceptions]

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        """A lexicon file: `terms` as severity -> category -> words, and `exceptions` (see lexicon.yaml)."""
        try:
            data = yaml.safe_load(path.read_text())
            entries = [
                Entry(str(term).lower(), Severity(severity), Category(category))
                for severity, categories in data["terms"].items()
                for category, terms in categories.items()
                for term in terms
            ]
            exceptions = [str(pattern) for pattern in data.get("exceptions") or ()]
            return cls(entries, exceptions)
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError, re.error) as exc:
            raise LexiconError(f"{path}: {exc}") from exc

    @property
    def entries(self) -> list[Entry]:
        return [entry for _lengths, entry in self._terms.values()]

    def lookup(self, word: str) -> Entry | None:
        """The entry a lower-case word matches, if any."""
        key, lengths = _runs(word)
        found = self._terms.get(key)
        if found is None or any(have < need for have, need in zip(lengths, found[0], strict=True)):
            return None
        return found[1]

    def find(self, text: str) -> list[Finding]:
        """Every listed word in `text`, as non-overlapping spans of the original text in text order."""
        skeleton = _skeleton(text)
        return [
            Finding(entry, *span, text[span[0] : span[1]])
            for entry, start, end in self._scan(skeleton.text)
            for span in [skeleton.span(start, end)]
        ]

    def unlocated(self, text: str, found: list[Finding] | None = None) -> list[Entry]:
        """Listed words that only a decoded reading of `text` shows (base64, hex, rot13: `normalize.views`),
        beyond those `find` located; they have no span in `text` to mask."""
        located = Counter(f.entry for f in (self.find(text) if found is None else found))
        hidden: Counter[Entry] = Counter()
        for view in views(text)[1:]:
            seen = Counter(entry for entry, _start, _end in self._scan(_skeleton(view).text))
            hidden |= seen - located
        return list(hidden.elements())

    def _scan(self, text: str) -> list[tuple[Entry, int, int]]:
        """(entry, start, end) over a skeleton: whole words, then spaced-out runs, less exception phrases."""
        hits = []
        for match in _WORD.finditer(text):
            entry = self.lookup(match[0]) if _LATIN_WORD.fullmatch(match[0]) else None
            if entry is not None:
                hits.append((entry, match.start(), match.end()))
        for match in _SPACED.finditer(text):
            letters = [(i, ch) for i, ch in enumerate(match[0], start=match.start()) if ch.isalpha()]
            for first in (0, 1) if letters[0][1] in _LEADING_WORDS else (0,):
                entry = self.lookup("".join(ch for _i, ch in letters[first:]))
                if entry is not None:
                    hits.append((entry, letters[first][0], match.end()))
                    break
        if self._exceptions:
            excepted = [m.span() for pattern in self._exceptions for m in pattern.finditer(text)]
            hits = [hit for hit in hits if not any(a <= hit[1] and hit[2] <= b for a, b in excepted)]
        return sorted(hits, key=lambda hit: hit[1])


@cache
def default_lexicon() -> Lexicon:
    """The packaged lexicon (`classifiers/data/lexicon.yaml`), loaded once per process."""
    return Lexicon.load(DEFAULT_PATH)


# --- policy -------------------------------------------------------------------------------------------------


class LexiconAction(StrEnum):
    ALLOW = "allow"
    REDACT = "redact"
    REVIEW = "review"
    BLOCK = "block"


_VERDICT_ACTION = {LexiconAction.REVIEW: Action.REVIEW, LexiconAction.BLOCK: Action.BLOCK}


class LexiconPolicy(BaseModel):
    """What the output side does with a listed word of each severity.

    `redact` masks the word in the delivered answer ("f***"), `review` delivers the answer as it is and
    queues it for a human, `block` refuses it, `allow` leaves it to the ML models. The defaults mask
    swearing, whatever its strength, so that an answer is not lost for one word, and refuse an answer
    with a slur: a slur does not belong in an answer even masked, and the context that carries one is rarely
    worth delivering. `unlocated` is what a `redact` severity does when the word can only be read in a
    decoded form of the text (base64, hex, rot13), where no span can be masked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mild: LexiconAction = LexiconAction.REDACT
    moderate: LexiconAction = LexiconAction.REDACT
    strong: LexiconAction = LexiconAction.REDACT
    severe: LexiconAction = LexiconAction.BLOCK
    unlocated: LexiconAction = Field(
        LexiconAction.REVIEW, description="For a `redact` word found only in a decoded form: review or block."
    )

    @field_validator("unlocated")
    @classmethod
    def _flags(cls, action: LexiconAction) -> LexiconAction:
        if action not in _VERDICT_ACTION:
            raise ValueError(f"must be review or block, not {action}: a word found only in a decoded form has no span")
        return action

    def action(self, severity: Severity) -> LexiconAction:
        return getattr(self, severity.value)

    def _unlocated_action(self, severity: Severity) -> LexiconAction:
        action = self.action(severity)
        return self.unlocated if action is LexiconAction.REDACT else action

    def check(self, text: str, layer: str, lexicon: Lexicon | None = None) -> Verdict:
        """A BLOCK or REVIEW verdict when a word of that severity is present (or a `redact` word could not be
        located); otherwise an allow verdict. Any verdict but a block lists the `redact` words' spans in
        `redactions` (the Moderator adds their `redacted:<kind>` reasons when it does not block). `scores`
        holds 1.0 for each category found, `allow` severities excepted."""
        lexicon = lexicon or default_lexicon()
        found = lexicon.find(text)
        redactions = tuple(f.redaction() for f in found if self.action(f.entry.severity) is LexiconAction.REDACT)
        decided = [(f.entry, self.action(f.entry.severity), f.kind) for f in found]
        decided += [
            (entry, self._unlocated_action(entry.severity), f"{entry.category}:{entry.severity}:unlocated")
            for entry in lexicon.unlocated(text, found)
        ]
        scores = {entry.category: 1.0 for entry, action, _kind in decided if action is not LexiconAction.ALLOW}
        flags = [(_VERDICT_ACTION[action], entry, kind) for entry, action, kind in decided if action in _VERDICT_ACTION]
        if not flags:
            return Verdict(layer=layer, scores=scores, redactions=redactions)
        worst = max((action for action, _entry, _kind in flags), key=lambda action: action.rank)
        deciding = [(entry, kind) for action, entry, kind in flags if action is worst]
        return Verdict(
            layer=layer,
            action=worst,
            category=deciding[0][0].category,
            score=1.0,
            scores=scores,
            flagged=frozenset(entry.category for _action, entry, _kind in flags),
            reasons=tuple(dict.fromkeys(f"lexicon:{kind}" for _entry, kind in deciding)),
            redactions=() if worst is Action.BLOCK else redactions,
        )
