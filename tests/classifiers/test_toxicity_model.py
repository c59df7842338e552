"""The Moderator's toxicity model (n-gram stage and stacked head) and the Detoxify loader, on the models
`safeserve models build` trains from the packaged comments."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from classifiers.embeddings import SentenceEmbedder
from classifiers.models_build import EMBEDDING_DIR, TOXICITY_CKPT, TOXICITY_DIR, TOXICITY_HF_DIR
from classifiers.moderation import OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import Bands, ThresholdPolicy
from classifiers.taxonomy import Category
from classifiers.toxicity import ToxicityModel
from classifiers.toxicity_model import DetoxifyScorer
from classifiers.verdict import Action

INSULT = "You are a worthless, stupid idiot and everyone hates you."
THANKS = "Thanks for the help, have a lovely afternoon."


@pytest.fixture(scope="module")
def toxicity(models_dir) -> ToxicityModel:
    return ToxicityModel.load(models_dir / TOXICITY_DIR, SentenceEmbedder(models_dir / EMBEDDING_DIR, threads=1))


def test_insults_score_high_and_ordinary_answers_low(toxicity):
    insult, thanks, answer = toxicity.score([INSULT, THANKS, "The capital of France is Paris."])
    assert insult > 0.8
    assert thanks < 0.1 and answer < 0.1
    refined = toxicity.refine([INSULT, THANKS], np.array([insult, thanks]))
    assert refined[0] > 0.5 > refined[1]


def test_short_answers_are_not_harassment(toxicity):
    """One-word answers and greetings once scored 0.5-0.8 harassment and filled the review queue."""
    texts = ["Red", "Blue", "Hello there", "I", "Yes.", "I'm sorry, I can't help with that."]
    scores = toxicity.score(texts)
    assert scores.max() < 0.2, dict(zip(texts, scores.round(3), strict=True))
    assert toxicity.refine(texts, scores).max() < 0.2


def test_a_toxic_text_about_a_group_is_hate(toxicity):
    group, person = toxicity.predict(["Muslims are filthy animals.", "You are a filthy animal."])
    assert set(group) == {Category.HATE} and set(person) == {Category.HARASSMENT}
    assert group[Category.HATE] > 0.5 and person[Category.HARASSMENT] > 0.5


def test_the_provenance_reports_held_out_figures(models_dir):
    provenance = json.loads((models_dir / TOXICITY_DIR / "provenance.json").read_text())
    metrics = provenance["test_metrics"]["ngram"]
    assert metrics["roc_auc"] > 0.95 and metrics["positives"] > 1000 and metrics["negatives"] > 5000
    assert provenance["rows"]["ngram"]["comments"]["toxic"] > 10_000


def test_refuses_a_head_trained_on_another_encoder(models_dir, tmp_path):
    moved = tmp_path / "toxicity"
    shutil.copytree(models_dir / TOXICITY_DIR, moved, ignore=shutil.ignore_patterns("detoxify"))
    provenance = json.loads((moved / "provenance.json").read_text())
    provenance["embedding"]["model_sha256"] = "0" * 64
    (moved / "provenance.json").write_text(json.dumps(provenance))
    encoder = SentenceEmbedder(models_dir / EMBEDDING_DIR, threads=1)
    with pytest.raises(RuntimeError, match="another sentence encoder"):
        ToxicityModel.load(moved, encoder)
    assert ToxicityModel.load(moved, None).score(["hello"]).shape == (1,)  # the n-gram stage needs no encoder


def test_a_blank_answer_is_not_given_to_the_models(toxicity):
    """A tool-call answer has no content; the Moderator must not ask the models about it (a toxicity model once
    read an empty string as 0.74 harassment, so every such answer went to review)."""
    moderator = OutputModerator(
        PatternSet([], layer="moderator"), [], ThresholdPolicy(default=Bands(review=0.5, block=0.9)), toxicity=toxicity
    )
    blank, spaces, insult = moderator.assess(["", "  \n", INSULT])
    assert blank.verdict.action is spaces.verdict.action is Action.ALLOW
    assert blank.model_scores == spaces.model_scores == {}
    assert insult.verdict.action is not Action.ALLOW  # the rows around them are still scored, in their places


@pytest.fixture(scope="module")
def detoxify(models_dir) -> DetoxifyScorer:
    return DetoxifyScorer(models_dir / TOXICITY_CKPT, models_dir / TOXICITY_HF_DIR)


def test_detoxify_checkpoint_scores_an_insult_above_thanks(detoxify):
    insult, thanks = detoxify.predict([INSULT, THANKS])
    assert insult[Category.HARASSMENT] > 0.5 > thanks[Category.HARASSMENT]
    (raw,) = detoxify.raw_predict(["some text"])
    assert set(raw) == {"toxicity"}  # Detoxify's own name for the Jigsaw `toxic` class
    assert detoxify.predict([]) == []


def test_loads_a_checkpoint_naming_a_hub_model(models_dir, tmp_path, detoxify):
    """A released Detoxify checkpoint names "bert-base-uncased"; it loads offline given a local config dir."""
    loaded = torch.load(models_dir / TOXICITY_CKPT, map_location="cpu", weights_only=False)
    loaded["config"]["arch"]["args"]["model_type"] = "bert-base-uncased"
    released_style = tmp_path / "released.ckpt"
    torch.save(loaded, released_style)
    scorer = DetoxifyScorer(released_style, models_dir / TOXICITY_HF_DIR)
    text = ["You are a worthless idiot."]
    assert scorer.raw_predict(text)[0] == pytest.approx(detoxify.raw_predict(text)[0])
