"""Fixtures shared by the classifier tests (the root conftest builds the artefacts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from classifiers.embeddings import SentenceEmbedder
from classifiers.intent_model import IntentModel
from classifiers.models_build import EMBEDDING_DIR, INTENT_DIR


@pytest.fixture(scope="session")
def embedder(models_dir: Path) -> SentenceEmbedder:
    return SentenceEmbedder(models_dir / EMBEDDING_DIR)


@pytest.fixture(scope="session")
def intent_model(models_dir: Path, embedder: SentenceEmbedder) -> IntentModel:
    return IntentModel.load(models_dir / INTENT_DIR, embedder)


@pytest.fixture
def all_members(intent_model: IntentModel) -> Callable[[list[str]], np.ndarray]:
    """The ensemble's class probabilities with every member reading every text (the cascade's band opened)."""

    def probabilities(texts: list[str]) -> np.ndarray:
        band = intent_model.embed_band
        try:
            intent_model.embed_band = (0.0, 1.0)
            return intent_model.class_probabilities(texts)
        finally:
            intent_model.embed_band = band

    return probabilities
