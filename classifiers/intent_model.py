"""Load and run the intent classifier built by classifiers.training.intent_trainer.

The model is an sklearn Pipeline whose classes are "benign" plus Category values. A softmax splits one
text's unsafe probability across related classes (an attack may be 0.4 jailbreak + 0.35 injection), so
`predict` gives the most likely category the whole unsafe mass 1 - P(benign) (the score the held-out
metrics in the provenance are computed on) and leaves every other category its own probability.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import sklearn
from sklearn.pipeline import Pipeline

from classifiers.taxonomy import Category

MODEL_FILE = "model.joblib"
PROVENANCE_FILE = "provenance.json"
BENIGN = "benign"


class IntentModel:
    """Multiclass prompt-intent classifier (prompt attacks and harm categories), about 1 ms per text on CPU."""

    def __init__(self, pipeline: Pipeline, provenance: dict) -> None:
        self._pipeline = pipeline
        self.provenance = provenance
        classes = [str(c) for c in pipeline.classes_]
        self._benign_index = classes.index(BENIGN)
        self._categories = [(i, Category(c)) for i, c in enumerate(classes) if c != BENIGN]

    @classmethod
    def load(cls, directory: Path) -> IntentModel:
        """Load `model.joblib` and `provenance.json` from an intent artefact directory."""
        directory = Path(directory)
        provenance = json.loads((directory / PROVENANCE_FILE).read_text())
        built_with = provenance.get("sklearn_version")
        if built_with and built_with != sklearn.__version__:
            # joblib pickles are only guaranteed to load under the scikit-learn version that wrote them.
            raise RuntimeError(
                f"intent model was built with scikit-learn {built_with}, "
                f"running {sklearn.__version__}: rebuild it (classifiers.models_build)"
            )
        return cls(joblib.load(directory / MODEL_FILE), provenance)

    @property
    def categories(self) -> list[Category]:
        """The categories this model scores (the keys of every `predict` result)."""
        return [category for _, category in self._categories]

    @property
    def threshold(self) -> float:
        """The threshold on 1 - P(benign) that the held-out metrics in the provenance refer to."""
        return float(self.provenance["test_metrics"]["decision_threshold"])

    def probabilities(self, texts: list[str]) -> list[dict[Category, float]]:
        """Per text, the probability of each non-benign category; benign is the remainder."""
        if not texts:
            return []
        with sklearn.config_context(assume_finite=True):
            proba = self._pipeline.predict_proba(texts)
        return [{category: float(row[i]) for i, category in self._categories} for row in proba]

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        """Per text, a score per category: the top category carries 1 - P(benign), the others their probability."""
        scores = self.probabilities(texts)
        for row in scores:
            top = max(row, key=row.get)
            row[top] = min(1.0, sum(row.values()))
        return scores
