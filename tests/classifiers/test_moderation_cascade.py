"""The Moderator's cascade: the cheap members decide the clear cases, and only the band's texts (an unsure
toxicity score, or a text naming a group of people) reach the dear members."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from classifiers.embeddings import SentenceEmbedder
from classifiers.models_build import EMBEDDING_DIR, TOXICITY_DIR
from classifiers.moderation import Member, ModeratorFirstStage, OutputModerator
from classifiers.patterns import PatternSet
from classifiers.policy import Bands, ThresholdPolicy
from classifiers.taxonomy import Category
from classifiers.toxicity import ToxicityModel
from classifiers.verdict import Action

INSULT = "You are a worthless, stupid idiot and everyone hates you."
PLAIN = "The train leaves at nine and arrives in Leeds just after eleven."
GROUP = "Immigrants have shaped the cuisine of many cities."
THRESHOLDS = ThresholdPolicy(default=Bands(review=0.5, block=0.9))


class Recording:
    """A member that says `scores` of every text it is given, and remembers what it was given."""

    def __init__(self, scores: dict[Category, float] | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.scores = scores or {}

    def __call__(self, texts: list[str], questions: list[str]) -> list[dict[Category, float]]:
        self.seen.extend(zip(texts, questions, strict=True))
        return [dict(self.scores) for _ in texts]


@pytest.fixture(scope="module")
def toxicity(models_dir) -> ToxicityModel:
    return ToxicityModel.load(models_dir / TOXICITY_DIR, SentenceEmbedder(models_dir / EMBEDDING_DIR, threads=1))


def _moderator(toxicity, band, member: Recording, stage="band", route_groups=True) -> OutputModerator:
    return OutputModerator(
        PatternSet([], layer="moderator"),
        [],
        THRESHOLDS,
        toxicity=toxicity,
        band=band,
        route_groups=route_groups,
        members=[Member("recording", member, stage)],
    )


def test_only_unsure_texts_and_texts_about_groups_reach_the_band(toxicity):
    unsure_text = "That is a really dumb idea and you should feel bad."
    unsure = float(toxicity.score([unsure_text])[0])
    band = (unsure - 0.01, unsure + 0.01)
    member = Recording()
    moderator = _moderator(toxicity, band, member)
    insult, plain, group, middle = moderator.assess([INSULT, PLAIN, GROUP, unsure_text], ["", "", "", "Why?"])
    assert [a.band for a in (insult, plain, group, middle)] == [False, False, True, True]
    assert member.seen == [(GROUP, ""), (unsure_text, "Why?")]
    assert insult.verdict.action is Action.BLOCK  # decided by the cheap stage alone
    assert plain.verdict.action is Action.ALLOW

    member.seen.clear()
    _moderator(toxicity, band, member, route_groups=False).assess([GROUP])
    assert member.seen == []
    _moderator(toxicity, band, member, stage="all").assess([INSULT, PLAIN])
    assert [text for text, _ in member.seen] == [INSULT, PLAIN]


def test_in_the_band_the_head_replaces_the_ngram_score_and_members_can_raise_it(toxicity):
    ngram = float(toxicity.score([GROUP])[0])
    head = float(toxicity.refine([GROUP], np.array([ngram]))[0])
    quiet = _moderator(toxicity, (0.0, 0.0), Recording()).assess([GROUP])[0]
    assert quiet.band and quiet.model_scores[Category.HATE] == pytest.approx(head)
    alarmed = _moderator(toxicity, (0.0, 0.0), Recording({Category.HATE: 0.95})).assess([GROUP])[0]
    assert alarmed.verdict.action is Action.BLOCK and alarmed.verdict.category is Category.HATE


def test_without_an_encoder_the_ngram_stage_decides_alone(models_dir):
    cheap = ToxicityModel.load(models_dir / TOXICITY_DIR, None)
    assert not cheap.refines
    member = Recording()
    (group,) = _moderator(cheap, (0.1, 0.9), member).assess([GROUP])
    assert group.band and member.seen == [(GROUP, "")]  # production members still read the band
    assert group.model_scores[Category.HATE] == pytest.approx(float(cheap.score([GROUP])[0]))


def test_the_first_stage_decides_the_texts_no_dear_member_reads_and_no_other(toxicity):
    unsure_text = "That is a really dumb idea and you should feel bad."
    unsure = float(toxicity.score([unsure_text])[0])
    member = Recording({Category.HARASSMENT: 0.95})
    moderator = _moderator(toxicity, (unsure - 0.01, unsure + 0.01), member)
    # As the ingress receives it: pickled, without the encoder or the members.
    stage = pickle.loads(pickle.dumps(ModeratorFirstStage("v1", moderator.first_stage())))
    clear = [INSULT, PLAIN, ""]
    assert stage.assess(clear, ["", "Where?", ""], [False, True, False]) == moderator.assess(
        clear, ["", "Where?", ""], [False, True, False]
    )
    for needs_the_band in (GROUP, unsure_text):
        assert stage.assess([PLAIN, needs_the_band], ["", ""], [False, False]) is None
    assert member.seen == []  # the copy has no members; nothing above reached the full moderator's band

    reads_everything = _moderator(toxicity, (0.4, 0.6), member, stage="all")
    assert reads_everything.first_stage() is None
    assert ModeratorFirstStage("v2", None).assess([PLAIN], [""], [False]) is None
