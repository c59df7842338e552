"""What the IntentClassifier and the Moderator share in handing their first stage to the ingress
(serve_app/first_stage.py): a version that names the config and the models, and a copy only when the ingress's
is not current."""

from __future__ import annotations

import hashlib
import json
from typing import Protocol, TypeVar

from pydantic import BaseModel


class Versioned(Protocol):
    version: str


Stage = TypeVar("Stage", bound=Versioned)


def stage_version(provenance: object, config: BaseModel) -> str:
    """The same on every replica of one config and model build, so an ingress copies the stage once."""
    models = hashlib.sha256(json.dumps(provenance, sort_keys=True, default=str).encode()).hexdigest()
    return f"{models[:16]}:{config.model_dump_json()}"


def unless_known(stage: Stage | None, known: str | None) -> Stage | None:
    """`stage`, or None when the caller already holds its version: asking often costs no copy of the model."""
    return None if stage is None or stage.version == known else stage
