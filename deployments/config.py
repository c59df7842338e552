"""The `user_config` of each model-holding deployment, validated with pydantic.

`reconfigure()` validates a new config whole and swaps it in live; fields marked as load-time (model paths,
device) make the replica reload its model, everything else (thresholds, patterns, prompts) applies at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from classifiers.answer_intent import ANSWER_EMBED_BAND
from classifiers.intent_model import DEFAULT_EMBED_BAND
from classifiers.lexicon import LexiconPolicy
from classifiers.moderation import DEFAULT_BAND
from classifiers.policy import Bands, PatternRule, ThresholdPolicy
from classifiers.sensitive_data import SensitiveDataPolicy
from classifiers.steering import Steering
from classifiers.taxonomy import Category
from classifiers.verdict import Action


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Device = Literal["auto", "cuda", "cpu"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
BatchWaitTimeout = Annotated[
    float,
    Field(
        ge=0,
        le=1,
        description="How long a lone call waits for others to batch with. 0: none; calls that arrive while a batch "
        "runs still form the next one.",
    ),
]


class IntentModelConfig(_Config):
    """Where the intent ensemble is loaded from (the IntentClassifier's, and the Moderator's answer check)."""

    model_path: str = Field("intent", description="Artefact directory, relative to the models directory.")
    embedding_path: str = Field(
        "minilm", description="Sentence-encoder directory (model.onnx + tokenizer.json) the model was trained on."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Texts the sentence encoder runs at once, one onnxruntime thread each (default: the CPUs "
        "Ray assigns the replica, rounded up).",
    )
    embed_band: tuple[Probability, Probability] = Field(
        DEFAULT_EMBED_BAND,
        description="Run the embedding members only on texts whose n-gram unsafe score lies inside this band; "
        "[0, 1] runs every member on every text.",
    )

    @field_validator("embed_band")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        if band[0] >= band[1]:
            raise ValueError(f"embed_band must be [low, high] with low < high, got {list(band)}")
        return band


class AnswerIntentConfig(IntentModelConfig):
    """The intent ensemble as the Moderator's harmful-instruction check: the same model, its own cascade band."""

    embed_band: tuple[Probability, Probability] = Field(
        ANSWER_EMBED_BAND,
        description="Run the embedding members only on answers whose n-gram mass on the instruction categories "
        "lies inside this band; [0, 1] runs every member on every answer.",
    )


class ChatJudgeEndpoint(_Config):
    """A safety LLM (Llama Guard 3, ShieldGemma) behind an OpenAI-compatible chat endpoint: where it is and how to
    ask it (the Moderator's `chat_judge` members and the IntentClassifier's `judge`)."""

    url: str = Field(pattern=r"^https?://.+/v1/?$", description="Base URL ending in /v1.")
    model: str = Field(min_length=1)
    format: Literal["llama_guard_3", "shieldgemma"]
    api_key_env: str | None = Field(None, description="Environment variable holding the endpoint's key, if any.")
    timeout_s: float = Field(2.0, gt=0, le=60)
    concurrency: int = Field(8, ge=1, le=256)
    unsafe_score: Probability = Field(1.0, description="The score an `unsafe` verdict gives its categories.")


class IntentJudgeConfig(ChatJudgeEndpoint):
    """A safety LLM asked for a second opinion on the prompts in the review band (and only those); its answer
    decides them. `timeout_s` bounds the whole second opinion of a batch, and must leave the models' time within
    the ingress's `timeouts.classify_s`."""

    name: str = Field("judge", min_length=1, description="Shown in reasons and logs.")
    on_unsafe: Action = Field(
        Action.BLOCK, description="For a prompt the judge calls unsafe (filed under the judge's category)."
    )
    on_safe: Action = Field(Action.ALLOW, description="For a prompt the judge calls safe.")
    on_error: Action = Field(
        Action.REVIEW, description="For a prompt it could not judge in time: review (default: the verdict stays)."
    )


class IntentClassifierConfig(IntentModelConfig):
    thresholds: ThresholdPolicy = ThresholdPolicy(default=Bands(review=0.6, block=0.85))
    strict_thresholds: ThresholdPolicy = Field(
        ThresholdPolicy(default=Bands(review=0.3, block=0.5)),
        description="Added for requests on the strict policy (low reputation, strict tier, high-risk tool).",
    )
    judge: IntentJudgeConfig | None = Field(
        None, description="A safety LLM asked about the review band's prompts (strict ones included); null: none."
    )
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: BatchWaitTimeout = 0.0

    def load_key(self) -> tuple:
        return (self.model_path, self.embedding_path, self.threads)


class UpstreamConfig(_Config):
    """An OpenAI-compatible server to guard (vLLM, a Ray Serve LLM app, another gateway)."""

    url: str = Field(
        description="Base URL ending in /v1, e.g. http://127.0.0.1:8001/v1.", pattern=r"^https?://.+/v1/?$"
    )
    model: str = Field(min_length=1, description="The model name the upstream serves.")
    api_key_env: str = Field(
        "SAFESERVE_UPSTREAM_API_KEY", description="Environment variable holding the upstream's API key, if any."
    )
    timeout_s: float = Field(
        120.0,
        gt=0,
        description="Longest wait for data from the upstream (httpx's read timeout, applied to each read): for "
        "the first byte of an answer and between stream chunks, not the whole answer (the ingress's "
        "timeouts.generate_s bounds a non-streamed one). Exceeded: an error, not retried.",
    )
    connect_timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(
        2, ge=0, le=10, description="Retries on connection errors, 429 and 5xx, before any output."
    )


Backend = Literal["transformers", "openai_upstream", "vllm"]


class GeneratorConfig(_Config):
    backend: Backend = Field(
        "transformers",
        description="`vllm` calls the application's LLMServer deployment (the `llm` section of the builder's args).",
    )
    upstream: UpstreamConfig | None = Field(None, description="Required with backend openai_upstream.")
    model: str = Field(
        "smollm2/hf", description="Local directory or .gguf file (relative to the models directory), or hub id."
    )
    gguf_file: str | None = Field(
        None,
        description="Load this GGUF file inside `model` (de-quantised per load); `model` may also be a .gguf path.",
    )
    device: Device = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    torch_threads: int | None = Field(
        None, ge=1, description="Override torch's thread count (Ray sets it to num_cpus)."
    )
    max_new_tokens: int = Field(256, ge=1, description="Ceiling on tokens generated per request.")
    max_batch_size: int = Field(8, ge=1, description="Concurrent non-streamed requests generated as one batch.")
    steering: Steering = Steering()
    tier_steering: dict[str, Steering] = Field(
        default_factory=dict, description="Per tier, a system prompt and refusal examples that replace `steering`."
    )
    banned_phrases: tuple[str, ...] = Field(
        (),
        description="Constrained decoding (transformers backend): these phrases cannot be generated, in any of "
        "their common spellings (leading space, capitalised, title or upper case). The Moderator's plain-phrase "
        "block rules are banned too, without being listed here.",
    )
    stop: tuple[str, ...] = Field((), description="Stop sequences added to every request's own.")
    repetition_penalty: float = Field(
        1.0,
        ge=1.0,
        le=2.0,
        description="Transformers backend: divide the logit of every token the answer already holds by this (1.0 is "
        "off). A small model needs it against loops; a production model should not. Not sent upstream: an "
        "OpenAI-compatible server has no standard field for it.",
    )
    no_repeat_ngram_size: int = Field(
        0,
        ge=0,
        description="Transformers backend: no run of this many tokens appears twice in an answer (0 is off). "
        "Not sent upstream, as `repetition_penalty`.",
    )

    @model_validator(mode="after")
    def _upstream_when_needed(self) -> GeneratorConfig:
        if self.backend == "openai_upstream" and self.upstream is None:
            raise ValueError(
                "backend openai_upstream needs `upstream` (url and model), or SAFESERVE_UPSTREAM_URL and "
                "SAFESERVE_UPSTREAM_MODEL in the environment"
            )
        return self

    def load_key(self) -> tuple:
        return (
            self.backend,
            self.upstream,
            self.model,
            self.gguf_file,
            self.device,
            self.dtype,
            self.torch_threads,
        )

    def steering_for(self, tier: str | None) -> Steering:
        return self.tier_steering.get(tier, self.steering) if tier else self.steering


class GeneratorOverrides(BaseSettings):
    """Environment overrides of the Generator's config (`make run` passes them through): run the same
    configuration against another model server without editing it."""

    model_config = SettingsConfigDict(env_prefix="SAFESERVE_", extra="ignore")

    generator_backend: Backend | None = None
    upstream_url: str | None = None
    upstream_model: str | None = None

    def apply(self, user_config: dict) -> GeneratorConfig:
        """The user_config with the overrides set in the environment, validated."""
        return GeneratorConfig.model_validate(self.merged(user_config))

    def merged(self, user_config: dict) -> dict:
        """The user_config with the overrides set in the environment."""
        merged = dict(user_config)
        if self.generator_backend:
            merged["backend"] = self.generator_backend
        if self.upstream_url or self.upstream_model:
            upstream = dict(merged.get("upstream") or {})
            if self.upstream_url:
                upstream["url"] = self.upstream_url
            if self.upstream_model:
                upstream["model"] = self.upstream_model
            merged["upstream"] = upstream
        return merged


class ToxicityConfig(_Config):
    """The Moderator's toxicity model (classifiers/toxicity.py) and the cascade band it routes by."""

    model_path: str = Field("toxicity", description="Artefact directory, relative to the models directory.")
    embedding_path: str | None = Field(
        "minilm",
        description="Sentence-encoder directory the stacked head was trained on; null runs the n-gram model alone "
        "and sends no text to the head.",
    )
    threads: int | None = Field(None, ge=1, description="Texts the encoder runs at once (default: the replica's CPUs).")
    band: tuple[Probability, Probability] = Field(
        DEFAULT_BAND,
        description="The band's members (the stacked head, `members` with stage band) read the texts whose n-gram "
        "toxicity score lies strictly inside this band; [0, 1] sends every text.",
    )
    route_groups: bool = Field(True, description="Also send every text that names a group of people to the band.")

    @field_validator("band")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        if band[0] >= band[1]:
            raise ValueError(f"band must be [low, high] with low < high, got {list(band)}")
        return band

    def load_key(self) -> tuple:
        return (self.model_path, self.embedding_path, self.threads)


class _MemberConfig(_Config):
    name: str | None = Field(None, description="Shown in reasons and logs (default: the kind).")
    stage: Literal["band", "all"] = Field("band", description="`band`: only the cascade's uncertain texts.")


class DetoxifyMember(_MemberConfig):
    """A Detoxify checkpoint (the original, unbiased or multilingual releases, or one of your own)."""

    kind: Literal["detoxify"]
    checkpoint: str = Field(description="The .ckpt file (relative to the models directory, or absolute).")
    config_dir: str = Field(description="Directory with the model's config.json and tokenizer files.")
    device: Device = "cpu"


class HFClassifierMember(_MemberConfig):
    """A local Hugging Face text-classification directory (config.json with id2label, weights, tokenizer)."""

    kind: Literal["hf_classifier"]
    path: str
    labels: dict[str, Category] = Field(description="Model label -> category; other labels are not reported.")
    activation: Literal["auto", "sigmoid", "softmax"] = "auto"
    max_length: int = Field(512, ge=8)
    device: Device = "cpu"


class OnnxClassifierMember(_MemberConfig):
    """An ONNX sequence classifier: model.onnx, tokenizer.json and labels.json (or config.json) in one directory."""

    kind: Literal["onnx_classifier"]
    path: str
    labels: dict[str, Category] = Field(description="Model label -> category; other labels are not reported.")
    activation: Literal["sigmoid", "softmax"] = "sigmoid"
    max_length: int = Field(512, ge=8)
    threads: int = Field(1, ge=1)


class ChatJudgeMember(_MemberConfig, ChatJudgeEndpoint):
    """A safety LLM as a Moderator member; asked only about the band's texts."""

    kind: Literal["chat_judge"]
    on_error: Action = Field(
        Action.REVIEW, description="For a text it could not judge in time: review (default), block or allow."
    )

    @field_validator("stage")
    @classmethod
    def _band_only(cls, stage: str) -> str:
        if stage != "band":
            raise ValueError("a chat_judge reads only the band's texts (stage: band)")
        return stage


ModeratorMember = Annotated[
    DetoxifyMember | HFClassifierMember | OnnxClassifierMember | ChatJudgeMember, Field(discriminator="kind")
]


class ModeratorConfig(_Config):
    denylist: tuple[PatternRule, ...] = ()
    sensitive_data: SensitiveDataPolicy = SensitiveDataPolicy()
    lexicon: LexiconPolicy = LexiconPolicy()
    thresholds: ThresholdPolicy = ThresholdPolicy(
        default=Bands(review=0.6, block=0.85), categories={Category.PROFANITY: Bands(review=0.7, block=0.9)}
    )
    toxicity: ToxicityConfig | None = Field(
        ToxicityConfig(), description="The toxicity model and the cascade; null: no toxicity model."
    )
    profanity_model: bool = True
    members: tuple[ModeratorMember, ...] = Field(
        (), description="Further models (production weights, a safety LLM), each with its `kind`."
    )
    answer_intent: AnswerIntentConfig | None = Field(
        AnswerIntentConfig(), description="Harmful-instruction check: the intent ensemble on question + answer."
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
    batch_wait_timeout_s: BatchWaitTimeout = 0.0

    @model_validator(mode="after")
    def _unique_member_names(self) -> ModeratorConfig:
        names = [member.name or member.kind for member in self.members]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"moderator members need distinct names: {repeated} repeated")
        return self

    def load_key(self) -> tuple:
        return (
            self.toxicity.load_key() if self.toxicity else None,
            self.profanity_model,
            self.members,
            self.answer_intent,
        )

    def decoding_bans(self) -> tuple[str, ...]:
        """The phrases of the deny-list's plain-phrase `block` rules: constrained decoding (transformers backend)
        makes them impossible to generate, so the model never emits what this policy would refuse on sight."""
        phrases = (rule.phrase for rule in self.denylist if rule.action is Action.BLOCK)
        return tuple(dict.fromkeys(phrase for phrase in phrases if phrase))


class RetentionConfig(_Config):
    """How long stored records live (docs/legal_and_compliance.md); the ReviewQueue's sweep enforces it."""

    incidents_days: float = Field(30, gt=0, description="Incident records (the `safeserve:incidents` stream).")
    reviews_days: float = Field(
        90, gt=0, description="Decided review items, counted from the decision; open items stay until decided."
    )
    audit_days: float = Field(365, gt=0, description="Audit entries (who did what, when, why).")
    enforce_every_s: float = Field(3600, gt=0, description="How often the streams are trimmed.")


class ReviewQueueConfig(_Config):
    sla_seconds: int = Field(3600, ge=1, description="Deadline for a human decision, from when an item is queued.")
    excerpt_chars: int = Field(500, ge=0, le=10_000)
    claim_timeout_s: float = Field(900, gt=0, description="A claim not decided within this returns to the queue.")
    sweep_interval_s: float = Field(5.0, gt=0, description="How often expired claims and the spool are looked at.")
    spool_path: str = Field(
        "spool/reviews.jsonl",
        description="Where items go while Redis is unreachable (relative to SAFESERVE_HOME); replayed once it returns.",
    )
    retention: RetentionConfig = RetentionConfig()


class RuntimeSettings(BaseSettings):
    """Process environment shared by every deployment (`SAFESERVE_*` variables)."""

    model_config = SettingsConfigDict(env_prefix="SAFESERVE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6390/0"
    redis_timeout_s: float = Field(2.0, gt=0)
