"""Configuration of the ingress: environment settings and the live policy (`user_config` of the Ingress).

Environment (`SAFESERVE_*`) holds what differs per machine and must stay secret; the policy holds what an
operator tunes and may change live through `serve deploy` without restarting replicas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from classifiers.policy import PatternRule
from deployments.config import RuntimeSettings


class Settings(RuntimeSettings):
    admin_key: SecretStr | None = Field(None, description="Bearer token for the admin API; unset disables it.")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FailMode = Literal["fail_closed", "fail_open"]


class TierConfig(_Config):
    max_tokens: int = Field(256, ge=1, description="Ceiling on max_tokens; larger requests are clamped.")


class IncidentConfig(_Config):
    store_prompt: bool = Field(False, description="Store the full prompt; off keeps only a hash and an excerpt.")
    excerpt_chars: int = Field(120, ge=0, le=2000)
    stream_maxlen: int = Field(100_000, ge=100, description="Approximate cap on the Redis incident stream.")


class StreamModerationConfig(_Config):
    holdback_tokens: int = Field(8, ge=0, description="Pieces withheld until the Moderator has seen what follows.")
    check_every_tokens: int = Field(8, ge=1, description="How many new pieces between two Moderator checks.")


class TimeoutConfig(_Config):
    classify_s: float = Field(10.0, gt=0)
    generate_s: float = Field(120.0, gt=0)
    moderate_s: float = Field(10.0, gt=0)
    review_s: float = Field(5.0, gt=0)


class IngressConfig(_Config):
    served_model: str = "safeserve-smollm2"
    max_prompt_chars: int = Field(16_000, ge=1)
    max_messages: int = Field(64, ge=1)
    default_max_tokens: int = Field(256, ge=1)
    refusal_message: str = "I'm sorry, but I can't help with that."
    input_patterns: tuple[PatternRule, ...] = ()
    tiers: dict[str, TierConfig] = Field(
        default_factory=lambda: {
            "free": TierConfig(max_tokens=128),
            "standard": TierConfig(max_tokens=256),
            "trusted": TierConfig(max_tokens=512),
        },
        min_length=1,
    )
    fail_modes: dict[Literal["intent_classifier", "moderator"], FailMode] = Field(
        default_factory=dict, description="Per safety layer; a layer not listed fails closed."
    )
    timeouts: TimeoutConfig = TimeoutConfig()
    incidents: IncidentConfig = IncidentConfig()
    stream_moderation: StreamModerationConfig = StreamModerationConfig()

    def fail_mode(self, layer: str) -> FailMode:
        return self.fail_modes.get(layer, "fail_closed")
