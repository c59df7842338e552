"""scikit-learn's `char_wb` n-grams of a text, counted against a fitted vocabulary with numpy instead of Python.

A 1,000-character answer has about 4,000 word-bounded character n-grams of length 2-5; building each as a Python
string and looking it up costs over a millisecond, most of a Moderator's budget for the answer. Here the text's
characters become one array, every window's polynomial hash (mod 2^64) comes from prefix hashes in a few vector
operations, and a sorted table of the vocabulary's hashes per n-gram length says which windows are features.

The windows are exactly sklearn's (`_VectorizerMixin._char_wb_ngrams`): each whitespace-separated word is padded
with one space each side; for each n, every window of the padded word, except that a padded word no longer than n
counts once, whole, and ends the word's n-grams. Two different strings of one length share a hash with
probability about 2^-64 per pair; the table itself is checked free of such a clash when it is built, and
tests/classifiers/test_char_ngrams.py compares the counts with scikit-learn's on thousands of texts.
"""

from __future__ import annotations

import numpy as np

_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2^64
_MASK = (1 << 64) - 1
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)


def _string_hash(text: str) -> int:
    value = 0
    for char in text:
        value = (value * _BASE + ord(char) + 1) & _MASK
    return value


def _powers(base: int, count: int) -> np.ndarray:
    """base^0 .. base^(count-1) modulo 2^64."""
    out = np.empty(count, dtype=np.uint64)
    value = 1
    for i in range(count):
        out[i] = value
        value = (value * base) & _MASK
    return out


class CharWbCounter:
    """Which vocabulary columns a text's `char_wb` n-grams hit, and how often."""

    def __init__(self, vectorizer, max_chars: int = 200_000) -> None:
        if vectorizer.analyzer != "char_wb" or vectorizer.preprocessor or vectorizer.tokenizer:
            raise ValueError("CharWbCounter reproduces the char_wb analyser with sklearn's own preprocessing only")
        if vectorizer.strip_accents:
            raise ValueError("CharWbCounter does not strip accents")
        self.min_n, self.max_n = vectorizer.ngram_range
        self.lowercase = bool(vectorizer.lowercase)
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        by_length: dict[int, list[tuple[int, int]]] = {}
        for term, column in vectorizer.vocabulary_.items():
            by_length.setdefault(len(term), []).append((_string_hash(term), column))
        for length, pairs in by_length.items():
            keys = np.array([key for key, _ in pairs], dtype=np.uint64)
            columns = np.array([column for _, column in pairs], dtype=np.int64)
            order = np.argsort(keys)
            keys, columns = keys[order], columns[order]
            if np.any(keys[1:] == keys[:-1]):
                raise ValueError(f"two vocabulary n-grams of length {length} share a hash")
            self._tables[length] = (keys, columns)
        self._base_powers = _powers(_BASE, self.max_n + 1)
        self._max_chars = max_chars
        self._forward = _powers(_BASE, max_chars + 1)
        self._backward = _powers(_BASE_INVERSE, max_chars + 1)

    def count(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, counts) of the vocabulary n-grams in `text`, columns ascending."""
        if self.lowercase:
            text = text.lower()
        words = text.split()
        if not words:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        padded = " " + "  ".join(words) + " "
        if len(padded) > self._max_chars:
            raise ValueError(f"text of {len(padded)} characters is longer than this counter's {self._max_chars}")
        codes = np.frombuffer(padded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + np.uint64(1)
        size = len(codes)
        # prefix[k] = sum_{j<k} codes[j] * B^(k-1-j), from a cumulative sum of codes[j] * B^-(j+1) (wrapping).
        scaled = np.cumsum(codes * self._backward[1 : size + 1])
        prefix = np.zeros(size + 1, dtype=np.uint64)
        prefix[1:] = scaled * self._forward[1 : size + 1]
        lengths = np.fromiter((len(w) + 2 for w in words), dtype=np.int64, count=len(words))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        ends = starts + lengths
        word_of = np.repeat(np.arange(len(words)), lengths)
        position = np.arange(size)
        found = []
        for n in range(self.min_n, self.max_n + 1):
            if n > size:
                break
            first = position[: size - n + 1]
            owner = word_of[first]
            # every window of length n inside a padded word longer than n
            valid = (first + n <= ends[owner]) & (lengths[owner] > n)
            chosen = first[valid]
            hashes = prefix[chosen + n] - prefix[chosen] * self._base_powers[n]
            found.append(self._lookup(n, hashes))
        # a padded word no longer than max_n also counts once, whole
        short = np.flatnonzero(lengths <= self.max_n)
        for length in np.unique(lengths[short]):
            picked = short[lengths[short] == length]
            hashes = prefix[ends[picked]] - prefix[starts[picked]] * self._base_powers[length]
            found.append(self._lookup(int(length), hashes))
        columns = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        return np.unique(columns, return_counts=True)

    def _lookup(self, length: int, hashes: np.ndarray) -> np.ndarray:
        table = self._tables.get(length)
        if table is None or not hashes.size:
            return np.zeros(0, dtype=np.int64)
        keys, columns = table
        at = np.searchsorted(keys, hashes)
        at[at == len(keys)] = 0
        hit = keys[at] == hashes
        return columns[at[hit]]
