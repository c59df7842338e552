"""The Detoxify-format toxicity model, loaded through the real detoxify library."""

from __future__ import annotations

import pytest
import torch

from classifiers.models_build import TOXICITY_CKPT, TOXICITY_HF_DIR
from classifiers.moderation import OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import Bands, ThresholdPolicy
from classifiers.taxonomy import Category
from classifiers.toxicity_model import DetoxifyScorer
from classifiers.verdict import Action

DETOXIFY_NAMES = {"toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack"}


@pytest.fixture(scope="module")
def scorer(models_dir) -> DetoxifyScorer:
    return DetoxifyScorer(models_dir / TOXICITY_CKPT, models_dir / TOXICITY_HF_DIR)


def test_toxic_insult_scores_higher_than_clean_text(scorer):
    toxic, clean = scorer.predict(
        ["You are a worthless, stupid idiot and everyone hates you.", "Thanks for the help, have a lovely afternoon."]
    )
    assert toxic[Category.HARASSMENT] > 0.5
    assert clean[Category.HARASSMENT] < 0.5
    assert toxic[Category.HARASSMENT] > clean[Category.HARASSMENT]


def test_threat_maps_to_violence(scorer):
    (scores,) = scorer.predict(["I know where you live and I am going to kill you."])
    assert scores[Category.VIOLENCE] > 0.5


def test_mapping_keys_are_categories_and_raw_names_are_detoxifys(scorer):
    (raw,) = scorer.raw_predict(["some text"])
    assert set(raw) == DETOXIFY_NAMES
    (mapped,) = scorer.predict(["some text"])
    assert set(mapped) == {Category.HARASSMENT, Category.VIOLENCE, Category.HATE, Category.PROFANITY}
    assert mapped[Category.HARASSMENT] == max(raw["toxicity"], raw["severe_toxicity"], raw["insult"])
    assert scorer.predict([]) == []


def test_loads_a_checkpoint_naming_a_hub_model(models_dir, tmp_path):
    """A released Detoxify checkpoint names "bert-base-uncased"; it loads offline given a local config dir."""
    loaded = torch.load(models_dir / TOXICITY_CKPT, map_location="cpu", weights_only=False)
    loaded["config"]["arch"]["args"]["model_type"] = "bert-base-uncased"
    released_style = tmp_path / "released.ckpt"
    torch.save(loaded, released_style)
    scorer = DetoxifyScorer(released_style, models_dir / TOXICITY_HF_DIR)
    reference = DetoxifyScorer(models_dir / TOXICITY_CKPT, models_dir / TOXICITY_HF_DIR)
    text = ["You are a worthless idiot."]
    assert scorer.raw_predict(text)[0] == pytest.approx(reference.raw_predict(text)[0])


def test_a_blank_answer_is_not_given_to_the_model(scorer):
    """A tool-call answer has no content. The model reads an empty string as harassment (about 0.74), so the
    Moderator must not ask it, or every such answer would go to review."""
    (empty,) = scorer.predict([""])
    assert empty[Category.HARASSMENT] > 0.5  # why the Moderator skips blank texts
    moderator = OutputModerator(PatternSet([], layer="moderator"), [scorer], ThresholdPolicy(default=Bands()))
    blank, spaces, insult = moderator.assess(["", "  \n", "You are a worthless idiot."])
    assert blank.verdict.action is spaces.verdict.action is Action.ALLOW
    assert blank.model_scores == spaces.model_scores == {}
    assert insult.verdict.action is not Action.ALLOW  # the rows around them are still scored, in their places
