"""The Moderator's toxicity model, built by classifiers.training.toxicity_trainer, as a two-stage cascade.

- `score`: a word n-gram TF-IDF logistic regression trained on about 150,000 labelled comments and the other
  toxicity sources. It reads every answer in a few hundredths of a millisecond (classifiers.tfidf_linear) and
  decides the clear cases.
- `refine`: a logistic regression over the text's all-MiniLM-L6-v2 vector and the n-gram model's log-odds,
  trained on comments the n-gram model never saw. It reads only the texts the Moderator's cascade sends it
  (n-gram score inside the band, or a text that names a group of people), and its probability replaces the
  n-gram model's there.

Both give one probability that a text is toxic; `category_scores` files it under `hate` when the text names a
group of people (classifiers.groups), else under `harassment`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import joblib
import numpy as np
import sklearn

from classifiers.embeddings import SentenceEmbedder
from classifiers.groups import names_a_group
from classifiers.taxonomy import Category
from classifiers.tfidf_linear import TfidfLinear

NGRAM_FILE = "ngram.joblib"
HEAD_FILE = "head.joblib"
PROVENANCE_FILE = "provenance.json"
_FLOOR = 1e-6


def log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, _FLOOR, 1.0 - _FLOOR)
    return np.log(p / (1.0 - p))


def head_features(vectors: np.ndarray, ngram_probability: np.ndarray) -> np.ndarray:
    """The head's input: the sentence vector and the n-gram model's log-odds, side by side."""
    return np.hstack([vectors, log_odds(ngram_probability)[:, None]])


def category_scores(texts: list[str], probability: np.ndarray) -> list[dict[Category, float]]:
    return [
        {Category.HATE if names_a_group(text) else Category.HARASSMENT: float(p)}
        for text, p in zip(texts, probability, strict=True)
    ]


class ToxicityModel:
    def __init__(self, ngram: dict, head, embedder: SentenceEmbedder | None, provenance: dict) -> None:
        self._ngram = TfidfLinear(ngram["vectorizer"], ngram["coef"], ngram["intercept"])
        self._head = head
        self._embedder = embedder
        self.provenance = provenance

    @classmethod
    def load(cls, directory: Path, embedder: SentenceEmbedder | None) -> ToxicityModel:
        """Load an artefact directory; `embedder` must be the encoder its head was trained on (None: no refining,
        the n-gram model alone)."""
        directory = Path(directory)
        provenance = json.loads((directory / PROVENANCE_FILE).read_text())
        built_with = provenance.get("sklearn_version")
        if built_with and built_with != sklearn.__version__:
            raise RuntimeError(
                f"toxicity model was built with scikit-learn {built_with}, running {sklearn.__version__}: "
                "rebuild it (safeserve models build)"
            )
        if embedder is not None and embedder.model_sha256 != provenance["embedding"]["model_sha256"]:
            raise RuntimeError(
                "the toxicity model's head was trained on another sentence encoder than the configured one: point "
                "`embedding_path` at the encoder it was trained with, or rebuild the model"
            )
        return cls(joblib.load(directory / NGRAM_FILE), joblib.load(directory / HEAD_FILE), embedder, provenance)

    @property
    def refines(self) -> bool:
        return self._embedder is not None

    def without_encoder(self) -> ToxicityModel:
        """This model with its n-gram stage alone: small, and free of the encoder's runtime, so it can be copied
        to another process (the ingress's first stage)."""
        ngram_only = copy.copy(self)
        ngram_only._embedder = None
        return ngram_only

    def score(self, texts: list[str]) -> np.ndarray:
        """The n-gram model's probability that each text is toxic, shape (n,)."""
        if not texts:
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-self._ngram.decision(texts)[:, 0]))

    def refine(self, texts: list[str], ngram_probability: np.ndarray) -> np.ndarray:
        """The head's probability for each text, given the n-gram model's (from `score`)."""
        if not texts:
            return np.zeros(0)
        if self._embedder is None:
            raise RuntimeError("this toxicity model was loaded without a sentence encoder: it cannot refine")
        vectors = self._embedder.embed(texts)
        with sklearn.config_context(assume_finite=True):
            return self._head.predict_proba(head_features(vectors, ngram_probability))[:, 1]

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        """The n-gram stage alone, as a `Scorer` (evaluation, and a Moderator without an encoder)."""
        return category_scores(texts, self.score(texts))
