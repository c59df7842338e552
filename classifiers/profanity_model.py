"""alt-profanity-check as an ensemble member: a linear model whose weights ship in the wheel (MIT).

The package's model is a scikit-learn CalibratedClassifierCV over five LinearSVCs, each with a sigmoid
calibrator; `predict_prob` spends milliseconds per call in scikit-learn's per-estimator overhead, whatever the
batch size. The same model is evaluated here as the package's TF-IDF features through the five SVMs' weights
(classifiers.tfidf_linear, one text at a time in plain Python) and five sigmoids: the same probabilities
(tests/classifiers/test_profanity_model.py compares them), at a small fraction of the cost.
"""

from __future__ import annotations

import numpy as np

from classifiers.taxonomy import Category
from classifiers.tfidf_linear import TfidfLinear


class ProfanityScorer:
    def __init__(self) -> None:
        from profanity_check import profanity_check as package

        model = package.model
        if model.method != "sigmoid" or list(model.classes_) != [0, 1]:
            raise RuntimeError(f"unexpected alt-profanity-check model: {model.method} over {list(model.classes_)}")
        members = model.calibrated_classifiers_
        coef = np.stack([m.estimator.coef_[0] for m in members], axis=1)  # (features, members)
        intercept = np.array([m.estimator.intercept_[0] for m in members])
        self._svms = TfidfLinear(package.vectorizer, coef, intercept)
        self._a = np.array([m.calibrators[0].a_ for m in members])
        self._b = np.array([m.calibrators[0].b_ for m in members])

    def predict(self, texts: list[str]) -> list[dict[Category, float]]:
        if not texts:
            return []
        decision = self._svms.decision(texts)
        # scikit-learn's _SigmoidCalibration: P(profane) = 1 / (1 + exp(a * f + b)), averaged over the members.
        probability = (1.0 / (1.0 + np.exp(self._a * decision + self._b))).mean(axis=1)
        return [{Category.PROFANITY: float(p)} for p in probability]
