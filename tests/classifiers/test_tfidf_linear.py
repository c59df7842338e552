"""TfidfLinear gives scikit-learn's decision values, one text at a time, for the vectoriser settings it meets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from classifiers.tfidf_linear import TfidfLinear

CORPUS = [
    "You are a stupid idiot and I hate you",
    "The capital of France is Paris.",
    "idiot idiot idiot, what an idiot",
    "Thanks for the help, see you tomorrow!",
    "I will find you and hurt you",
    "Photosynthesis turns light into chemical energy.",
]
TEXTS = [*CORPUS, "", "   ", "words the vectoriser never saw", "IDIOT!!! stupid stupid", "Paris, France"]


@pytest.mark.parametrize(
    "settings",
    [
        {"ngram_range": (1, 2), "sublinear_tf": True},
        {"stop_words": "english"},
        {"ngram_range": (1, 1), "norm": None},
        {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": True},
    ],
)
def test_decision_values_match_scikit_learn(settings):
    vectorizer = TfidfVectorizer(**settings).fit(CORPUS)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(len(vectorizer.vocabulary_), 3))
    intercept = rng.normal(size=3)
    expected = vectorizer.transform(TEXTS) @ coef + intercept
    linear = TfidfLinear(vectorizer, coef, intercept)
    assert linear.decision(TEXTS) == pytest.approx(np.asarray(expected), abs=1e-9)
    one_output = TfidfLinear(vectorizer, coef[:, 0], intercept[:1])
    assert one_output.decision(TEXTS)[:, 0] == pytest.approx(np.asarray(expected)[:, 0], abs=1e-9)


def test_a_text_alone_scores_as_in_a_batch():
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(CORPUS)
    linear = TfidfLinear(vectorizer, np.ones(len(vectorizer.vocabulary_)), np.zeros(1))
    batch = linear.decision(TEXTS)
    for i, text in enumerate(TEXTS):
        assert linear.decision([text])[0] == pytest.approx(batch[i])


def test_refuses_a_layer_of_the_wrong_size_and_counts_without_idf():
    vectorizer = TfidfVectorizer().fit(CORPUS)
    with pytest.raises(ValueError, match="inputs"):
        TfidfLinear(vectorizer, np.ones(3), np.zeros(1))
    with pytest.raises(ValueError, match="idf"):
        TfidfLinear(TfidfVectorizer(use_idf=False).fit(CORPUS), np.ones(1), np.zeros(1))
