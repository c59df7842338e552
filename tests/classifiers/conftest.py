"""Fixtures shared by the classifier tests (the root conftest builds the artefacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.intent_model import IntentModel
from classifiers.models_build import INTENT_DIR


@pytest.fixture(scope="session")
def intent_model(models_dir: Path) -> IntentModel:
    return IntentModel.load(models_dir / INTENT_DIR)
