"""Configuration of the ingress: environment settings and the live policy (`user_config` of the Ingress).

Environment (`SAFESERVE_*`) holds what differs per machine and must stay secret; the policy holds what an
operator tunes and may change live through `serve deploy` without restarting replicas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from classifiers.policy import PatternRule
from classifiers.taxonomy import Category
from deployments.config import RuntimeSettings


class Settings(RuntimeSettings):
    admin_key: SecretStr | None = Field(None, description="Bearer token for the admin API; unset disables it.")
    key_hash_secret: SecretStr | None = Field(
        None,
        description="Secret of the keyed hash (HMAC-SHA256) API keys are stored under; changing it invalidates "
        "every key. Unset: derived from the admin key.",
    )

    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Request bodies larger than this are refused with a 413 as they arrive, before they are parsed "
        "or their key is checked (SAFESERVE_MAX_BODY_BYTES).",
    )

    @field_validator("admin_key", "key_hash_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (e.g. from a Secret created from an example file) means unset, never an empty key."""
        return None if value == "" else value

    @field_validator("admin_key", "key_hash_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -base64 32`)")
        return value

    def hash_secret(self) -> bytes:
        secret = self.key_hash_secret or self.admin_key
        if secret is None:
            raise ValueError("set SAFESERVE_KEY_HASH_SECRET (or SAFESERVE_ADMIN_KEY): API keys are stored under it")
        return secret.get_secret_value().encode()


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FailMode = Literal["fail_closed", "fail_open"]


class Limits(_Config):
    """Per-key usage limits; a key's own limits override its tier's, field by field."""

    requests_per_minute: int | None = Field(None, ge=1, description="None: unlimited.")
    tokens_per_minute: int | None = Field(None, ge=1, description="Prompt + completion tokens; None: unlimited.")
    tokens_per_day: int | None = Field(None, ge=1, description="Daily quota (UTC day); None: unlimited.")

    def merged(self, overrides: Limits | None) -> Limits:
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_none=True))


Risk = Literal["low", "medium", "high"]


class ToolRule(_Config):
    """Tools a tier may offer the model: an exact name or a shell-style pattern (`search_*`)."""

    pattern: str = Field(min_length=1, max_length=128)
    risk: Risk = "low"


class TierConfig(_Config):
    max_tokens: int = Field(256, ge=1, description="Ceiling on max_tokens; larger requests are clamped.")
    limits: Limits = Limits()
    tools: tuple[ToolRule, ...] = Field((), description="Allowed tools; none by default.")
    trusted: bool = Field(False, description="May use high-risk tools (their requests run on the strict policy).")
    policy: Literal["standard", "strict"] = "standard"
    review_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of allowed answers sent to human review for quality control."
    )

    @model_validator(mode="after")
    def _high_risk_needs_trust(self) -> TierConfig:
        risky = [rule.pattern for rule in self.tools if rule.risk == "high"]
        if risky and not self.trusted:
            raise ValueError(f"high-risk tools {risky} are allowed only in a tier with trusted: true")
        return self


PenaltyEvent = Literal["block", "output_block", "review", "review_rejected"]


class ReputationConfig(_Config):
    """Per-user reputation, 0-100, starting at `initial`. Penalties are per event and scaled by the category's
    weight; time restores `recovery_per_hour` points and each clean request `clean_request_bonus`.

    Events: `block` (the user's own request refused), `output_block` (the Moderator refused the model's answer),
    `review` (a review-band verdict not yet decided; given back when a reviewer approves) and `review_rejected`
    (a reviewer confirmed the violation). The gateway's own uncertain calls must not add up to punishing a
    benign user, so the `unconfirmed` events never take a score below `strict_below`, and every event's
    penalties are capped per window (`penalty_caps` points per `penalty_window_minutes`)."""

    initial: float = Field(100.0, ge=0, le=100)
    strict_below: float = Field(60.0, ge=0, le=100)
    suspend_below: float = Field(30.0, ge=0, le=100)
    suspension_minutes: int = Field(60, ge=1)
    penalties: dict[PenaltyEvent, float] = Field(
        default_factory=lambda: {"block": 10.0, "output_block": 3.0, "review": 1.0, "review_rejected": 15.0}
    )
    penalty_caps: dict[PenaltyEvent, float] = Field(
        default_factory=lambda: {"output_block": 9.0, "review": 3.0},
        description="Most points one event may take from a user within a window; an event not listed is uncapped.",
    )
    penalty_window_minutes: float = Field(60.0, gt=0)
    unconfirmed: frozenset[PenaltyEvent] = Field(
        frozenset({"output_block", "review"}),
        description="Events no human or input check has confirmed: they never take a score below strict_below.",
    )
    category_weights: dict[Category, float] = Field(
        default_factory=lambda: {Category.SEXUAL_MINORS: 3.0, Category.WEAPONS_CBRN: 2.0}
    )
    recovery_per_hour: float = Field(2.0, ge=0)
    clean_request_bonus: float = Field(0.2, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ReputationConfig:
        if not self.suspend_below <= self.strict_below <= self.initial:
            raise ValueError("reputation thresholds must satisfy suspend_below <= strict_below <= initial")
        negative = sorted(event for event, points in {**self.penalties, **self.penalty_caps}.items() if points < 0)
        if negative:
            raise ValueError(f"penalties and penalty_caps must not be negative: {negative}")
        return self

    def penalty(self, event: str, category: str | None) -> float:
        weight = self.category_weights.get(category, 1.0) if category else 1.0
        return self.penalties.get(event, 0.0) * weight


class IncidentConfig(_Config):
    store_prompt: bool = Field(False, description="Store the full prompt; off keeps only a hash and an excerpt.")
    excerpt_chars: int = Field(120, ge=0, le=2000)
    stream_maxlen: int = Field(100_000, ge=100, description="Approximate cap on the Redis incident stream.")


class StreamModerationConfig(_Config):
    holdback_tokens: int = Field(
        8,
        ge=0,
        description="Tokens (of the ingress's tokenizer_path) withheld until the Moderator has seen what follows: "
        "at most this many tokens of an unsafe span it recognises reach the client.",
    )
    check_every_tokens: int = Field(8, ge=1, description="How many new tokens between two Moderator checks.")


class GuardrailApiConfig(_Config):
    """LiteLLM's Generic Guardrail API route (docs/litellm.md)."""

    stream_holdback_chars: int = Field(
        48,
        ge=0,
        description="Characters at the end of a streamed answer that LiteLLM (streaming_transform_mode "
        "incremental_diff) withholds until its next call: at most this many characters of an unsafe span "
        "SafeServe recognises reach the client.",
    )
    dedupe_ttl_s: int = Field(
        3600,
        ge=1,
        description="How long a LiteLLM call id's recorded decisions are remembered, so that the calls LiteLLM "
        "makes on a stream's growing answer record each decision (incident, reputation) once.",
    )


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
    fail_modes: dict[Literal["intent_classifier", "moderator", "rate_limiter"], FailMode] = Field(
        default_factory=dict, description="Per safety layer; a layer not listed fails closed."
    )
    tokenizer_path: str = Field(
        "smollm2/hf",
        description="Directory with the served model's tokenizer.json (relative to the models directory): "
        "prompt and completion tokens for the token limits are counted with it.",
    )
    reputation: ReputationConfig = ReputationConfig()
    safe_mode: bool = Field(False, description="Kill switch: decide every request on the strict policy.")
    stop_generation: bool = Field(
        False,
        description="Kill switch: chat completions are refused with 503 `generation_stopped`; moderation, "
        "reviews, admin and the console stay up.",
    )
    stop_generation_message: str = "Generation is paused by the operators of this service. Please try again later."
    review_modes: dict[Category, Literal["async", "hold"]] = Field(
        default_factory=dict,
        description="Per category: `async` delivers the answer and reviews it afterwards, `hold` withholds it "
        "until a reviewer approves; categories not listed use default_review_mode.",
    )
    default_review_mode: Literal["async", "hold"] = "async"
    timeouts: TimeoutConfig = TimeoutConfig()
    incidents: IncidentConfig = IncidentConfig()
    stream_moderation: StreamModerationConfig = StreamModerationConfig()
    guardrail_api: GuardrailApiConfig = GuardrailApiConfig()

    def review_mode(self, category: Category | None) -> Literal["async", "hold"]:
        return self.review_modes.get(category, self.default_review_mode) if category else self.default_review_mode

    def fail_mode(self, layer: str) -> FailMode:
        return self.fail_modes.get(layer, "fail_closed")
