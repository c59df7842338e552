"""The `user_config` of each model-holding deployment, validated with pydantic.

`reconfigure()` validates a new config whole and swaps it in live; fields marked as load-time (model paths,
device) make the replica reload its model, everything else (thresholds, patterns, prompts) applies at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from classifiers.intent_model import DEFAULT_EMBED_BAND
from classifiers.lexicon import LexiconPolicy
from classifiers.policy import Bands, PatternRule, ThresholdPolicy
from classifiers.sensitive_data import SensitiveDataPolicy
from classifiers.steering import Steering
from classifiers.taxonomy import Category


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Device = Literal["auto", "cuda", "cpu"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class IntentModelConfig(_Config):
    """Where the intent ensemble is loaded from (the IntentClassifier's, and the Moderator's answer check)."""

    model_path: str = Field("intent", description="Artefact directory, relative to the models directory.")
    embedding_path: str = Field(
        "minilm", description="Sentence-encoder directory (model.onnx + tokenizer.json) the model was trained on."
    )
    threads: int | None = Field(None, ge=1, description="onnxruntime intra-op threads (default: one per core).")
    embed_band: tuple[Probability, Probability] = Field(
        DEFAULT_EMBED_BAND,
        description="Run the embedding member only on texts whose n-gram unsafe score lies inside this band; "
        "[0, 1] runs both members on every text.",
    )

    @field_validator("embed_band")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        if band[0] >= band[1]:
            raise ValueError(f"embed_band must be [low, high] with low < high, got {list(band)}")
        return band


class IntentClassifierConfig(IntentModelConfig):
    thresholds: ThresholdPolicy = ThresholdPolicy(default=Bands(review=0.6, block=0.85))
    strict_thresholds: ThresholdPolicy = Field(
        ThresholdPolicy(default=Bands(review=0.3, block=0.5)),
        description="Added for requests on the strict policy (low reputation, strict tier, high-risk tool).",
    )
    max_batch_size: int = Field(32, ge=1)

    def load_key(self) -> tuple:
        return (self.model_path, self.embedding_path, self.threads)


class GeneratorConfig(_Config):
    backend: Literal["transformers"] = "transformers"
    model: str = Field("smollm2/hf", description="Local directory (relative to the models directory) or hub id.")
    gguf_file: str | None = Field(None, description="Load this GGUF file inside `model` (de-quantised per load).")
    device: Device = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    torch_threads: int | None = Field(
        None, ge=1, description="Override torch's thread count (Ray sets it to num_cpus)."
    )
    max_new_tokens: int = Field(256, ge=1, description="Ceiling on tokens generated per request.")
    steering: Steering = Steering()

    def load_key(self) -> tuple:
        return (self.backend, self.model, self.gguf_file, self.device, self.dtype, self.torch_threads)


class DetoxifyConfig(_Config):
    checkpoint: str = "toxicity/toxicity.ckpt"
    config_dir: str = "toxicity/hf"
    device: Device = "cpu"


class ModeratorConfig(_Config):
    denylist: tuple[PatternRule, ...] = ()
    sensitive_data: SensitiveDataPolicy = SensitiveDataPolicy()
    lexicon: LexiconPolicy = LexiconPolicy()
    thresholds: ThresholdPolicy = ThresholdPolicy(
        default=Bands(review=0.6, block=0.85), categories={Category.PROFANITY: Bands(review=0.7, block=0.9)}
    )
    detoxify: DetoxifyConfig | None = DetoxifyConfig()
    profanity_model: bool = True
    answer_intent: IntentModelConfig | None = Field(
        IntentModelConfig(), description="Harmful-instruction check: the intent ensemble on question + answer."
    )
    answer_thresholds: ThresholdPolicy = Field(
        ThresholdPolicy(default=Bands(review=0.5, block=0.8)),
        description="Bands for the harmful-instruction check's scores (the text models use `thresholds`).",
    )
    strict_thresholds: ThresholdPolicy = Field(
        ThresholdPolicy(default=Bands(review=0.3, block=0.7)),
        description="Added, over all model scores, for answers on the strict policy: borderline ones are reviewed.",
    )
    max_batch_size: int = Field(16, ge=1)

    def load_key(self) -> tuple:
        return (self.detoxify, self.profanity_model, self.answer_intent)


class ReviewQueueConfig(_Config):
    sla_seconds: int = Field(3600, ge=1, description="Deadline for a human decision, from when an item is queued.")
    excerpt_chars: int = Field(500, ge=0, le=10_000)
    claim_timeout_s: float = Field(900, gt=0, description="A claim not decided within this returns to the queue.")
    sweep_interval_s: float = Field(5.0, gt=0, description="How often expired claims and the spool are looked at.")
    spool_path: str = Field(
        "spool/reviews.jsonl",
        description="Where items go while Redis is unreachable (relative to SAFESERVE_HOME); replayed once it returns.",
    )


class RuntimeSettings(BaseSettings):
    """Process environment shared by every deployment (`SAFESERVE_*` variables)."""

    model_config = SettingsConfigDict(env_prefix="SAFESERVE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6390/0"
    redis_timeout_s: float = Field(2.0, gt=0)
