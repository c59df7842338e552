"""The profanity member computes alt-profanity-check's own probabilities, only faster."""

from __future__ import annotations

import numpy as np
from profanity_check import predict_prob

from classifiers.profanity_model import ProfanityScorer
from classifiers.taxonomy import Category

TEXTS = [
    "Thanks, that was really helpful.",
    "You are a fucking idiot and everyone hates you.",
    "What a load of shit.",
    "The quarterly report is due on Friday; please send the figures.",
    "",
    "damn",
]


def test_it_gives_the_package_probabilities() -> None:
    scores = ProfanityScorer().predict(TEXTS)
    ours = np.array([s[Category.PROFANITY] for s in scores])
    np.testing.assert_allclose(ours, predict_prob(TEXTS), rtol=1e-9, atol=1e-12)
    assert ours[1] > 0.9 > 0.1 > ours[0]


def test_no_texts_no_scores() -> None:
    assert ProfanityScorer().predict([]) == []
