"""A fitted word TF-IDF vectoriser followed by a linear layer, evaluated one text at a time in plain Python.

scikit-learn's `transform` then a sparse product costs most of a millisecond for one short text, nearly all of
it in per-call validation and sparse-matrix assembly around the work itself. The work is small: the analyser's
terms, each term's weight in the layer times its idf, one sum and one norm. Doing exactly that gives the same
decision values (tests/classifiers/test_tfidf_linear.py compares them with scikit-learn's) at a few
hundredths of a millisecond a text, which is what lets the Moderator's cheap members read every answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from classifiers.char_ngrams import CharWbCounter


class TfidfLinear:
    """`decision(texts)` = `vectorizer.transform(texts) @ coef + intercept`, as an (n, k) array."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray) -> None:
        if vectorizer.norm not in ("l2", None) or not vectorizer.use_idf:
            raise ValueError("TfidfLinear needs a TfidfVectorizer with idf weighting and l2 or no norm")
        coef = np.asarray(coef, dtype=np.float64)
        if coef.ndim == 1:
            coef = coef[:, None]
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        if coef.shape[0] != len(idf):
            raise ValueError(f"the linear layer has {coef.shape[0]} inputs, the vectoriser {len(idf)} features")
        self.outputs = coef.shape[1]
        self._analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._normalise = vectorizer.norm == "l2"
        self._intercept = np.asarray(intercept, dtype=np.float64).reshape(self.outputs)
        self._index: dict[str, int] = dict(vectorizer.vocabulary_)
        self._idf = idf
        self._coef = np.ascontiguousarray(coef)
        # Character n-grams are counted with numpy (classifiers.char_ngrams): a long text has thousands of them.
        self._char_counter = CharWbCounter(vectorizer) if _plain_char_wb(vectorizer) else None

    def decision(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.outputs))
        for row, text in enumerate(texts):
            out[row] = self._one(text)
        return out + self._intercept

    def _terms(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The columns of the text's known terms and their counts."""
        if self._char_counter is not None:
            try:
                return self._char_counter.count(text)
            except (ValueError, UnicodeEncodeError):  # longer than the counter's tables, or a lone surrogate
                pass
        index = self._index
        columns, counts = [], []
        for term, count in Counter(self._analyze(text)).items():
            column = index.get(term)
            if column is not None:
                columns.append(column)
                counts.append(count)
        return np.array(columns, dtype=np.int64), np.array(counts, dtype=np.int64)

    def _one(self, text: str) -> np.ndarray:
        """The text's TF-IDF vector (only its known terms) times the layer: one gather and one product."""
        picked, counts = self._terms(text)
        if not picked.size:
            return np.zeros(self.outputs)
        tf = counts.astype(np.float64)
        if self._sublinear:
            tf = 1.0 + np.log(tf)
        weights = tf * self._idf[picked]
        total = weights @ self._coef[picked]
        if self._normalise:
            total = total / math.sqrt(float(weights @ weights))
        return total


def _plain_char_wb(vectorizer) -> bool:
    return (
        vectorizer.analyzer == "char_wb"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and not vectorizer.strip_accents
    )
