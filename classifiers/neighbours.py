"""The intent ensemble's third member: the training rows nearest in meaning vote on a text's class.

A logistic regression on sentence embeddings draws one flat boundary per class through the embedding space, and
a family of prompts that sits in a pocket of it (softly worded system-prompt extraction, one jailbreak template
reworded many ways) falls on the wrong side. The labelled training rows nearest to a text, by cosine similarity
of the same all-MiniLM-L6-v2 vectors, see such pockets; the stacking combiner learns from their out-of-fold
votes how far to trust them. It reuses the vector the embedding head reads, so it costs one matrix product over
the stored rows (about 1.7 ms for one text on one core, 0.4 ms a text in batches of 32, for 20,000 rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NEIGHBOURS_FILE = "neighbours.npz"
_CHUNK = 512  # query rows per similarity product: bounds the (chunk, stored rows) matrix to about 40 MB


class NearestNeighbours:
    """Class probabilities from the `k` stored unit vectors most similar to each query vector.

    Each neighbour votes for its class with weight exp((similarity - 1) / temperature): a near-duplicate of a
    labelled row casts almost a whole vote, a row at cosine 0.8 (temperature 0.05) a fiftieth of one. The votes
    are added to `prior_votes` votes spread as the stored rows' classes are, so a text near no stored row gets
    about the class frequencies, not the say of whichever rows happen to be least far: weighted relative to the
    nearest row instead, an everyday coding question ("How do I execute a Makefile target from a different
    directory?") got a confident vote from its distant neighbours and scored 0.77 (docs/evaluation.md)."""

    def __init__(
        self,
        vectors: np.ndarray,
        labels: np.ndarray,
        n_classes: int,
        k: int,
        temperature: float,
        prior_votes: float,
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if vectors.ndim != 2 or len(vectors) != len(labels):
            raise ValueError(f"neighbours: {len(labels)} labels for vectors of shape {vectors.shape}")
        if not 0 < k <= len(labels):
            raise ValueError(f"neighbours: k={k} must lie in 1..{len(labels)} (the stored rows)")
        if temperature <= 0 or prior_votes <= 0:
            raise ValueError("neighbours: temperature and prior_votes must be positive")
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"neighbours: labels must be class indices in 0..{n_classes - 1}")
        self._vectors_t = np.ascontiguousarray(vectors.T)
        self._labels = labels
        self.n_classes = n_classes
        self.k = k
        self.temperature = temperature
        self.prior_votes = prior_votes
        self._prior = np.bincount(labels, minlength=n_classes) / len(labels)

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """An (n, n_classes) array of class probabilities for (n, dimension) unit vectors."""
        out = np.zeros((len(vectors), self.n_classes))
        for start in range(0, len(vectors), _CHUNK):
            similarity = np.asarray(vectors[start : start + _CHUNK], dtype=np.float32) @ self._vectors_t
            nearest = np.argpartition(similarity, -self.k, axis=1)[:, -self.k :]  # no negated copy
            weights = np.exp((np.take_along_axis(similarity, nearest, axis=1) - 1.0) / self.temperature)
            votes = out[start : start + _CHUNK]
            np.add.at(votes, (np.arange(len(votes))[:, None], self._labels[nearest]), weights)
        return (out + self.prior_votes * self._prior) / (out.sum(axis=1, keepdims=True) + self.prior_votes)

    def save(self, path: Path) -> None:
        np.savez(
            path,
            vectors=self._vectors_t.T,
            labels=self._labels,
            params=np.array([self.n_classes, self.k, self.temperature, self.prior_votes]),
        )

    @classmethod
    def load(cls, path: Path) -> NearestNeighbours:
        with np.load(path) as stored:
            n_classes, k, temperature, prior_votes = stored["params"].tolist()
            return cls(stored["vectors"], stored["labels"], int(n_classes), int(k), temperature, prior_votes)
