"""The neighbours member: the nearest stored rows vote, the nearest most, and a stored row all but decides."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.neighbours import NearestNeighbours


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Two tight clusters (class 0 around the x axis, class 1 around the y axis) and one class-2 row between them.
STORED = unit([[1, 0.05, 0], [1, -0.05, 0], [1, 0, 0.05], [0.05, 1, 0], [-0.05, 1, 0], [0, 1, 0.05], [1, 1, 0]])
LABELS = np.array([0, 0, 0, 1, 1, 1, 2])


def test_a_text_takes_the_class_of_its_nearest_rows() -> None:
    member = NearestNeighbours(STORED, LABELS, n_classes=3, k=3, temperature=0.05, prior_votes=0.05)
    proba = member.predict_proba(unit([[1, 0.01, 0], [0.01, 1, 0]]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0].argmax() == 0 and proba[0, 0] > 0.9
    assert proba[1].argmax() == 1 and proba[1, 1] > 0.9
    assert (proba > 0).all()  # the prior keeps every class possible


def test_the_nearest_row_counts_most() -> None:
    # k=7 lets every stored row vote; a text close to the lone class-2 row still goes to class 2.
    member = NearestNeighbours(STORED, LABELS, n_classes=3, k=7, temperature=0.02, prior_votes=0.05)
    (proba,) = member.predict_proba(unit([[1, 1, 0.01]]))
    assert proba.argmax() == 2
    # with a high temperature the votes flatten and the two clusters' three rows each outvote it
    flat = NearestNeighbours(STORED, LABELS, n_classes=3, k=7, temperature=100.0, prior_votes=0.05)
    (proba,) = flat.predict_proba(unit([[1, 1, 0.01]]))
    assert proba[2] < proba[0] and proba[2] < proba[1]


def test_a_text_near_no_stored_row_gets_about_the_class_frequencies() -> None:
    member = NearestNeighbours(STORED, LABELS, n_classes=3, k=3, temperature=0.05, prior_votes=0.05)
    (proba,) = member.predict_proba(unit([[0, 0, 1]]))  # at cosine 0.05 or less from every stored row
    np.testing.assert_allclose(proba, np.bincount(LABELS) / len(LABELS), atol=1e-3)


def test_a_batch_gives_each_text_what_it_gets_alone() -> None:
    rng = np.random.default_rng(7)
    stored = unit(rng.normal(size=(1200, 8)).tolist())
    labels = rng.integers(0, 4, size=1200)
    member = NearestNeighbours(stored, labels, n_classes=4, k=20, temperature=0.05, prior_votes=0.05)
    queries = unit(rng.normal(size=(600, 8)).tolist())  # more than one similarity chunk
    batched = member.predict_proba(queries)
    for row in (0, 511, 512, 599):
        # The same neighbours and votes; BLAS may take another kernel for one query row than for many, so the
        # float32 similarities can differ in their last bits (6e-8 in the probabilities on an AVX2 CPU).
        np.testing.assert_allclose(member.predict_proba(queries[row : row + 1])[0], batched[row], atol=1e-6)


def test_saved_and_loaded_it_votes_the_same(tmp_path) -> None:
    member = NearestNeighbours(STORED, LABELS, n_classes=3, k=3, temperature=0.05, prior_votes=0.05)
    member.save(tmp_path / "neighbours.npz")
    loaded = NearestNeighbours.load(tmp_path / "neighbours.npz")
    assert (loaded.k, loaded.temperature, loaded.prior_votes, loaded.n_classes) == (3, 0.05, 0.05, 3)
    queries = unit([[1, 0.2, 0.1], [0.3, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(loaded.predict_proba(queries), member.predict_proba(queries))


@pytest.mark.parametrize(
    ("labels", "n_classes", "k", "message"),
    [
        (LABELS[:-1], 3, 3, "labels for vectors"),
        (LABELS, 3, 0, "k=0"),
        (LABELS, 3, 8, "k=8"),
        (LABELS, 2, 3, "class indices in 0..1"),
    ],
)
def test_an_inconsistent_member_is_refused(labels, n_classes, k, message) -> None:
    with pytest.raises(ValueError, match=message):
        NearestNeighbours(STORED, labels, n_classes=n_classes, k=k, temperature=0.05, prior_votes=0.05)


@pytest.mark.parametrize(("temperature", "prior_votes"), [(0.0, 0.05), (0.05, 0.0)])
def test_votes_need_a_positive_temperature_and_prior(temperature, prior_votes) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        NearestNeighbours(STORED, LABELS, n_classes=3, k=3, temperature=temperature, prior_votes=prior_votes)
