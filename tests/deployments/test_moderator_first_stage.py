"""The Moderator's first stage, as the ingress runs it: on every answer it decides, the assessment the Moderator
itself gives; it decides most answers; and it copies small and whole (what the ingress receives)."""

from __future__ import annotations

import asyncio
import json
import pickle
import random

import pytest

from deployments.moderator import Moderator
from harness.processes import app_deploy_config, deployment_config


@pytest.fixture(scope="module")
def moderator(models_dir) -> Moderator:
    moderator = Moderator()
    moderator.reconfigure(deployment_config(app_deploy_config(), "Moderator")["user_config"])
    return moderator


@pytest.fixture(scope="module")
def exchanges(models_dir) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (models_dir / "eval" / "output.jsonl").read_text().splitlines()]
    return [(row["text"], row.get("question", "")) for row in random.Random(7).sample(rows, 300)]


def test_the_first_stage_gives_the_moderators_assessment_wherever_it_decides(moderator, exchanges) -> None:
    stage = pickle.loads(pickle.dumps(moderator._first_stage))  # as the ingress receives it
    decided, flagged = 0, 0
    for i, (text, question) in enumerate(exchanges):
        strict = i % 3 == 0
        mine = stage.assess([text], [question], [strict])
        if mine is not None:
            decided += 1
            assert mine == moderator._moderator.assess([text], [question], [strict]), text
            flagged += mine[0].verdict.flagged != frozenset()
    assert decided >= 0.6 * len(exchanges), f"the first stage decided only {decided} of {len(exchanges)}"
    assert flagged, "the first stage decided no flagged answer: the comparison above saw only clean ones"


def test_the_copy_is_small_and_asked_for_again_only_when_it_changed(moderator) -> None:
    stage = asyncio.run(moderator.first_stage(None))
    assert stage is not None and len(pickle.dumps(stage)) < 64 * 2**20
    assert asyncio.run(moderator.first_stage(stage.version)) is None  # the caller's copy is current
    shipped = deployment_config(app_deploy_config(), "Moderator")["user_config"]
    moderator.reconfigure({**shipped, "thresholds": {"default": {"review": 1.0, "block": 1.0}}})
    try:
        fresh = asyncio.run(moderator.first_stage(stage.version))
        assert fresh is not None and fresh.version != stage.version
        assert fresh.moderator.thresholds.default.review == 1.0
    finally:
        moderator.reconfigure(shipped)
