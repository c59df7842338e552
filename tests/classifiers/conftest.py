"""Fixtures shared by the classifier tests (the root conftest builds the artefacts)."""

from __future__ import annotations

from pathlib import Path

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
