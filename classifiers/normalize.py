"""Input normalisation that runs before every check, so that trivial obfuscation does not slip past them."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and other invisible formatting characters (Unicode category Cf) are stripped: they carry no
# meaning for a reader but split the words that patterns and models look for.
_WHITESPACE = re.compile(r"\s+")


def _visible(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize(text: str) -> str:
    """NFKC-fold, drop invisible characters, collapse runs of whitespace and trim."""
    folded = unicodedata.normalize("NFKC", text)
    return _WHITESPACE.sub(" ", _visible(folded)).strip()
