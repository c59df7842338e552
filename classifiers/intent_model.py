"""Load and run the intent ensemble built by classifiers.training.intent_trainer.

Three complementary members score each text over the same classes ("benign" plus Category values):
- a word + character n-gram TF-IDF logistic regression (`ngram.joblib`): exact phrasing, obfuscated spellings;
- a classifier head on all-MiniLM-L6-v2 sentence embeddings (`embedding_head.joblib`): meaning, paraphrase;
- the training rows nearest to the text's embedding (`neighbours.npz`, classifiers.neighbours): families of
  prompts the head's flat boundaries cut through.
A stacking logistic regression (`combiner.joblib`), fit on the members' out-of-fold probabilities, turns their
log-probabilities into one calibrated distribution per text.

The members run as a cascade: the n-gram member (about 0.3 ms a text) scores every text, and the two embedding
members (about 30 times dearer together) only those whose n-gram unsafe mass lies inside `embed_band`; where the
n-gram member is sure, its own distribution is the answer. With the default band the embedding members read about
a sixth of the training rows out of fold (a twentieth of the evaluation sets' benign prompts, a quarter of their
attacks), and the cascade recalls as many attacks as the full ensemble at fewer false positives: the ensemble
reviews the n-gram member's confident flags up to 0.95, where a benign text it over-reads is cleared (the trainer
reports both out of fold, and the band search that chose the default; docs/evaluation.md).

A softmax splits one text's unsafe probability across related classes (an attack may be 0.4 jailbreak + 0.35
injection), so `predict` gives the most likely category the whole unsafe mass 1 - P(benign) (the score the
evaluation reports are computed on) and leaves every other category its own probability.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import scipy.special
import sklearn

from classifiers.embeddings import SentenceEmbedder
from classifiers.neighbours import NEIGHBOURS_FILE, NearestNeighbours
from classifiers.taxonomy import Category
from classifiers.tfidf_linear import TfidfLinear

NGRAM_FILE = "ngram.joblib"
EMBEDDING_HEAD_FILE = "embedding_head.joblib"
COMBINER_FILE = "combiner.joblib"
PROVENANCE_FILE = "provenance.json"
BENIGN = "benign"
_FLOOR = 1e-6  # log-probabilities are clipped here, in training and serving alike
# Chosen out of fold on the training rows (the trainer's `metrics.cascade.band_search`), never on the evaluation
# sets: the most attacks recalled at 2 % benign false positives among the bands that embed no more rows than the
# earlier (0.1, 0.9); (0.25, 0.95) recalls 92.9 % (harmful requests 83.0 %) embedding 16 % of rows, against 91.9 %
# at 18 %. Bands within 0.1 point of it ((0.4, 0.97), (0.3, 0.97)) recalled fewer harmful requests.
DEFAULT_EMBED_BAND = (0.25, 0.95)


def top_carries_mass(probabilities: dict[Category, float]) -> dict[Category, float]:
    """The scores of one text: its most likely category carries the summed probability of all the given
    categories (capped at 1), the others keep their own."""
    scores = dict(probabilities)
    top = max(scores, key=scores.get)
    scores[top] = min(1.0, sum(scores.values()))
    return scores


def stack_features(*member_probabilities: np.ndarray) -> np.ndarray:
    """The combiner's input: each member's log-probabilities side by side."""
    return np.hstack([np.log(np.clip(p, _FLOOR, 1.0)) for p in member_probabilities])


def in_band(mass: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    return (mass > band[0]) & (mass < band[1])


def unsure(ngram_probabilities: np.ndarray, benign_index: int, band: tuple[float, float]) -> np.ndarray:
    """The rows the embedding members must also read: n-gram unsafe mass strictly inside `band`."""
    return in_band(1.0 - ngram_probabilities[:, benign_index], band)


class LinearNgramMember:
    """The n-gram member (a FeatureUnion of TF-IDF vectorisers, then a multinomial logistic regression) evaluated
    as its parts: each vectoriser's terms through its block of the regression's weights (classifiers.tfidf_linear),
    the blocks summed, a softmax. The same probabilities as the pipeline's `predict_proba`
    (tests/classifiers/test_intent_model.py compares them), without scikit-learn's per-call validation and sparse
    assembly, which cost more than the work itself for the one or few texts a request brings."""

    def __init__(self, pipeline) -> None:
        (_, union), (_, classifier) = pipeline.steps
        if union.transformer_weights or any(isinstance(part, str) for _, part in union.transformer_list):
            raise ValueError("the intent n-gram model's feature union must have no weights and no dropped parts")
        if classifier.coef_.shape[0] != len(classifier.classes_):
            raise ValueError("the intent n-gram model's classifier must be multinomial, one row per class")
        self.classes_ = classifier.classes_
        self._blocks = []
        start = 0
        for _, vectorizer in union.transformer_list:
            width = len(vectorizer.vocabulary_)
            block = classifier.coef_[:, start : start + width].T
            self._blocks.append(TfidfLinear(vectorizer, block, np.zeros(block.shape[1])))
            start += width
        if start != classifier.coef_.shape[1]:
            raise ValueError("the intent n-gram model's vectorisers do not add up to its classifier's inputs")
        self._intercept = classifier.intercept_

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        decision = sum(block.decision(texts) for block in self._blocks) + self._intercept
        return scipy.special.softmax(decision, axis=1)


@dataclass(frozen=True)
class NgramStage:
    """The model's first stage alone (its n-gram member, its band, its categories), small enough to copy to the
    ingress and run there: `predict_if_sure` gives `IntentModel.predict`'s scores exactly when no text needs the
    embedding members, and None when one does."""

    member: LinearNgramMember
    benign: int
    categories: tuple[tuple[int, Category], ...]
    embed_band: tuple[float, float]

    def predict_if_sure(self, texts: list[str]) -> list[dict[Category, float]] | None:
        if not texts:
            return []
        proba = self.member.predict_proba(texts)
        if unsure(proba, self.benign, self.embed_band).any():
            return None
        return [top_carries_mass({category: float(row[i]) for i, category in self.categories}) for row in proba]


class IntentModel:
    """Multiclass prompt-intent ensemble (prompt attacks and harm categories) on CPU."""

    def __init__(
        self,
        ngram,
        embedding_head,
        neighbours: NearestNeighbours,
        combiner,
        embedder: SentenceEmbedder,
        provenance: dict,
        embed_band: tuple[float, float] = DEFAULT_EMBED_BAND,
    ) -> None:
        classes = [str(c) for c in combiner.classes_]
        for name, member in (("n-gram model", ngram), ("embedding head", embedding_head)):
            if [str(c) for c in member.classes_] != classes:
                raise ValueError(f"intent {name} classes {list(member.classes_)} differ from the combiner's")
        if neighbours.n_classes != len(classes):
            raise ValueError(f"intent neighbours vote over {neighbours.n_classes} classes, the combiner {len(classes)}")
        self._ngram = LinearNgramMember(ngram)
        self._embedding_head = embedding_head
        self._neighbours = neighbours
        self._combiner = combiner
        self._embedder = embedder
        self.provenance = provenance
        self.embed_band = embed_band  # (0, 1) runs every member on every text
        self._benign = classes.index(BENIGN)
        self._categories = [(i, Category(c)) for i, c in enumerate(classes) if c != BENIGN]

    @classmethod
    def load(
        cls, directory: Path, embedder: SentenceEmbedder, embed_band: tuple[float, float] = DEFAULT_EMBED_BAND
    ) -> IntentModel:
        """Load an intent artefact directory; `embedder` must be the encoder its head was trained on."""
        directory = Path(directory)
        provenance = json.loads((directory / PROVENANCE_FILE).read_text())
        built_with = provenance.get("sklearn_version")
        if built_with and built_with != sklearn.__version__:
            # joblib pickles are only guaranteed to load under the scikit-learn version that wrote them.
            raise RuntimeError(
                f"intent model was built with scikit-learn {built_with}, "
                f"running {sklearn.__version__}: rebuild it (safeserve models build)"
            )
        expected = provenance["embedding"]["model_sha256"]
        if embedder.model_sha256 != expected:
            raise RuntimeError(
                f"the intent model's embedding head was trained on the encoder with sha256 {expected[:12]}..., "
                f"but the configured encoder is {embedder.model_sha256[:12]}...: point `embedding_path` at the "
                "encoder it was trained with, or retrain the intent model on the new one"
            )
        if not (directory / NEIGHBOURS_FILE).is_file():
            raise RuntimeError(
                f"intent model at {directory} has no {NEIGHBOURS_FILE} (built before the neighbours member): "
                "rebuild it (safeserve models build)"
            )
        ngram, embedding_head, combiner = (
            joblib.load(directory / name) for name in (NGRAM_FILE, EMBEDDING_HEAD_FILE, COMBINER_FILE)
        )
        neighbours = NearestNeighbours.load(directory / NEIGHBOURS_FILE)
        return cls(ngram, embedding_head, neighbours, combiner, embedder, provenance, embed_band)

    def first_stage(self) -> NgramStage:
        return NgramStage(self._ngram, self._benign, tuple(self._categories), tuple(self.embed_band))

    @property
    def categories(self) -> list[Category]:
        """The categories this model scores (the keys of every `predict` result)."""
        return [category for _, category in self._categories]

    @property
    def columns(self) -> dict[Category, int]:
        """Each category's column in `class_probabilities`."""
        return {category: i for i, category in self._categories}

    def member_probabilities(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each member's class probabilities (n-gram, embedding head, neighbours), (n, classes) each, in the
        combiner's class order."""
        with sklearn.config_context(assume_finite=True):
            return self._ngram.predict_proba(texts), *self._embedding_members(texts)

    def _embedding_members(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        vectors = self._embedder.embed(texts)
        return self._embedding_head.predict_proba(vectors), self._neighbours.predict_proba(vectors)

    def class_probabilities(self, texts: list[str], watched: Collection[Category] | None = None) -> np.ndarray:
        """The calibrated class probabilities, (n, classes): combined where the n-gram member is unsure, the
        n-gram member's own elsewhere. Unsure means its mass on the `watched` categories (default: every unsafe
        one) lies inside `embed_band`; a caller that decides on a few categories only watches those."""
        return self.cascade(texts, watched)[0]

    def cascade(self, texts: list[str], watched: Collection[Category] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`class_probabilities`, and which texts the embedding members read (a boolean per text)."""
        with sklearn.config_context(assume_finite=True):
            proba = self._ngram.predict_proba(texts)
            if watched is None:
                embed = unsure(proba, self._benign, self.embed_band)
            else:
                columns = [i for i, category in self._categories if category in watched]
                embed = in_band(proba[:, columns].sum(axis=1), self.embed_band)
            rows = np.flatnonzero(embed)
            if rows.size:
                embedded = self._embedding_members([texts[i] for i in rows])
                proba[rows] = self._combiner.predict_proba(stack_features(proba[rows], *embedded))
        return proba, embed

    def probabilities(
        self, texts: list[str], watched: Collection[Category] | None = None
    ) -> list[dict[Category, float]]:
        """Per text, the probability of each non-benign category; benign is the remainder. `watched`: as in
        `class_probabilities`."""
        if not texts:
            return []
        proba = self.class_probabilities(texts, watched)
        return [{category: float(row[i]) for i, category in self._categories} for row in proba]

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        """Per text, a score per category: the top category carries 1 - P(benign), the others their probability."""
        return [top_carries_mass(row) for row in self.probabilities(texts)]
