"""A user_config that a running replica cannot apply is refused, and the replica keeps serving its policy; at
start-up there is no policy to keep, and the error stops the replica as Serve expects."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from deployments.moderator import Moderator
from harness.processes import app_deploy_config, deployment_config

INSULT = "You are a worthless idiot and everyone hates you."


@pytest.fixture(scope="module")
def shipped() -> dict:
    return deployment_config(app_deploy_config(), "Moderator")["user_config"]


def test_an_invalid_policy_is_refused_and_the_running_one_keeps_deciding(models_dir, shipped, caplog) -> None:
    moderator = Moderator()
    moderator.reconfigure(shipped)
    running = moderator._moderator
    inverted = {**shipped, "thresholds": {"default": {"review": 0.9, "block": 0.5}}}
    with caplog.at_level(logging.ERROR, logger="ray.serve.safeserve.live_config"):
        moderator.reconfigure(inverted)
    assert moderator._moderator is running and moderator.config == type(moderator.config).model_validate(shipped)
    assert moderator._moderator.moderate([INSULT])[0].flagged
    (record,) = caplog.records
    assert "Moderator: the deployed user_config was refused" in record.getMessage()
    assert "review threshold 0.9 is above block" in record.getMessage()

    missing_model = {**shipped, "toxicity": {**shipped["toxicity"], "model_path": "no-such-model"}}
    moderator.reconfigure(missing_model)  # a model that does not load: refused the same way
    assert moderator._moderator is running

    moderator.reconfigure({**shipped, "thresholds": {"default": {"review": 1.0, "block": 1.0}}})
    assert not moderator._moderator.moderate([INSULT])[0].flagged  # a valid change still applies


def test_at_start_up_an_invalid_policy_is_an_error(shipped) -> None:
    with pytest.raises(ValidationError, match="review threshold 0.9 is above block"):
        Moderator().reconfigure({**shipped, "thresholds": {"default": {"review": 0.9, "block": 0.5}}})
