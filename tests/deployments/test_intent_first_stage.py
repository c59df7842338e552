"""The IntentClassifier's first stage, as the ingress runs it: on every conversation it decides, the verdict the
classifier itself gives; it decides most prompts; and it copies small and whole (what the ingress receives)."""

from __future__ import annotations

import json
import pickle
import random

import pytest

from classifiers.normalize import views
from deployments.intent_classifier import IntentClassifier
from harness.processes import app_deploy_config, deployment_config


@pytest.fixture(scope="module")
def classifier(models_dir) -> IntentClassifier:
    classifier = IntentClassifier()
    classifier.reconfigure(deployment_config(app_deploy_config(), "IntentClassifier")["user_config"])
    return classifier


@pytest.fixture(scope="module")
def prompts(models_dir) -> list[str]:
    rows = [json.loads(line) for line in (models_dir / "eval" / "input.jsonl").read_text().splitlines()]
    return [row["text"] for row in random.Random(7).sample(rows, 400)]


def test_the_first_stage_gives_the_classifiers_verdict_wherever_it_decides(classifier, prompts) -> None:
    stage = pickle.loads(pickle.dumps(classifier._first_stage))  # as the ingress receives it
    decided = 0
    for text, strict in ((text, i % 3 == 0) for i, text in enumerate(prompts)):
        turns = [views(text)]
        mine = stage.classify(turns, strict)
        if mine is not None:
            decided += 1
            assert mine == classifier._analyzer.classify([turns], [strict])[0], text
    assert decided >= 0.6 * len(prompts), f"the first stage decided only {decided} of {len(prompts)}"


def test_the_copy_is_small_and_asked_for_again_only_when_it_changed(classifier) -> None:
    import asyncio

    stage = asyncio.run(classifier.first_stage(None))
    assert stage is not None and len(pickle.dumps(stage)) < 64 * 2**20
    assert asyncio.run(classifier.first_stage(stage.version)) is None  # the caller's copy is current
    changed = deployment_config(app_deploy_config(), "IntentClassifier")["user_config"]
    changed["thresholds"]["default"] = {"review": 0.2, "block": 0.3}
    classifier.reconfigure(changed)
    fresh = asyncio.run(classifier.first_stage(stage.version))
    assert fresh is not None and fresh.version != stage.version
    assert fresh.analyzer.thresholds.default.block == 0.3
