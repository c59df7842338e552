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


class TfidfLinear:
    """`decision(texts)` = `vectorizer.transform(texts) @ coef + intercept`, as an (n, k) array."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray) -> None:
        if vectorizer.norm not in ("l2", None) or not vectorizer.use_idf:
            raise ValueError("TfidfLinear needs a TfidfVectorizer with idf weighting and l2 or no norm")
        coef = np.asarray(coef, dtype=np.float64)
        if coef.ndim == 1:
            coef = coef[:, None]
        idf = vectorizer.idf_
        if coef.shape[0] != len(idf):
            raise ValueError(f"the linear layer has {coef.shape[0]} inputs, the vectoriser {len(idf)} features")
        self.outputs = coef.shape[1]
        self._analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._normalise = vectorizer.norm == "l2"
        self._intercept = np.asarray(intercept, dtype=np.float64).reshape(self.outputs)
        # Per term: its idf and its idf-weighted row of the layer (a float when the layer has one output).
        rows = coef * idf[:, None]
        self._terms: dict[str, tuple[float, float | np.ndarray]] = {
            term: (float(idf[i]), float(rows[i, 0]) if self.outputs == 1 else rows[i])
            for term, i in vectorizer.vocabulary_.items()
        }

    def decision(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.outputs))
        for row, text in enumerate(texts):
            out[row] = self._one(text)
        return out + self._intercept

    def _one(self, text: str) -> float | np.ndarray:
        total: float | np.ndarray = 0.0
        squares = 0.0
        terms = self._terms
        for term, count in Counter(self._analyze(text)).items():
            known = terms.get(term)
            if known is None:
                continue
            tf = 1.0 + math.log(count) if self._sublinear else float(count)
            idf, weighted = known
            total = total + tf * weighted
            squares += (tf * idf) ** 2
        if self._normalise and squares > 0.0:
            total = total / math.sqrt(squares)
        return total
