"""Moderator deployment: secrets and personal data, swear words and slurs, deny-list, and the ML cascade (the
profanity model and the toxicity model's n-gram stage on every text; the toxicity head and any configured
production members on the uncertain band; the intent ensemble on question + answer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ray import serve
from ray.serve import metrics

from classifiers.answer_intent import HarmfulAnswerScorer
from classifiers.embeddings import SentenceEmbedder
from classifiers.moderation import Assessment, Member, ModeratorFirstStage, OutputModerator, text_member
from classifiers.paths import resolve_model_path
from classifiers.patterns import PatternSet
from classifiers.profanity_model import ProfanityScorer
from classifiers.scoring import Scorer
from classifiers.toxicity import ToxicityModel
from classifiers.verdict import Verdict
from deployments.config import (
    ChatJudgeMember,
    DetoxifyMember,
    HFClassifierMember,
    ModeratorConfig,
    ModeratorMember,
    OnnxClassifierMember,
)
from deployments.devices import cpu_threads, pick_device
from deployments.first_stages import stage_version, unless_known
from deployments.intent_classifier import load_intent_model, open_chat_judge
from deployments.live_config import keeps_running_policy
from deployments.scores import observe_scores

TEXTS = metrics.Counter(
    "safeserve_moderator_texts",
    description="Texts the Moderator's models read, by how far down the cascade they went: `cheap` (decided by the "
    "cheap members alone) or `band` (also read by a dear member: the toxicity head, a production member, the answer "
    "check's embedding members).",
    tag_keys=("stage",),
)


@dataclass(frozen=True)
class Scorers:
    """The loaded models: `text` score the answer alone on every text, `toxicity` is the cascade's own model,
    `members` the configured production models, `answer` the answer in the context of its question."""

    text: list[Scorer] = field(default_factory=list)
    toxicity: ToxicityModel | None = None
    members: list[Member] = field(default_factory=list)
    answer: list[Scorer] = field(default_factory=list)


def load_member(config: ModeratorMember) -> Member:
    """A production member from its config (its weights loaded, or its endpoint's client made)."""
    name = config.name or config.kind
    if isinstance(config, DetoxifyMember):
        from classifiers.toxicity_model import DetoxifyScorer

        scorer = DetoxifyScorer(
            resolve_model_path(config.checkpoint), resolve_model_path(config.config_dir), pick_device(config.device)
        )
        return text_member(name, scorer, config.stage)
    if isinstance(config, HFClassifierMember):
        from classifiers.text_classifiers import HFTextClassifier

        scorer = HFTextClassifier(
            resolve_model_path(config.path),
            config.labels,
            pick_device(config.device),
            config.activation,
            config.max_length,
        )
        return text_member(name, scorer, config.stage)
    if isinstance(config, OnnxClassifierMember):
        from classifiers.text_classifiers import OnnxTextClassifier

        onnx = OnnxTextClassifier(
            resolve_model_path(config.path), config.labels, config.activation, config.max_length, config.threads
        )
        return text_member(name, onnx, config.stage)
    if isinstance(config, ChatJudgeMember):
        return Member(name, open_chat_judge(config).judge, "band", config.on_error)
    raise TypeError(f"unknown member kind {config!r}")


def load_scorers(config: ModeratorConfig) -> Scorers:
    text: list[Scorer] = [ProfanityScorer()] if config.profanity_model else []
    toxicity = None
    if config.toxicity is not None:
        embedder = None
        if config.toxicity.embedding_path:
            threads = cpu_threads(config.toxicity.threads)
            embedder = SentenceEmbedder(resolve_model_path(config.toxicity.embedding_path), threads=threads)
        toxicity = ToxicityModel.load(resolve_model_path(config.toxicity.model_path), embedder)
    answer = [HarmfulAnswerScorer(load_intent_model(config.answer_intent))] if config.answer_intent else []
    return Scorers(text, toxicity, [load_member(member) for member in config.members], answer)


def build_moderator(config: ModeratorConfig, scorers: Scorers) -> OutputModerator:
    """The output moderation stack a config describes, around already loaded scorers."""
    cascade = config.toxicity
    return OutputModerator(
        PatternSet(list(config.denylist), layer="moderator"),
        scorers.text,
        config.thresholds,
        config.sensitive_data,
        config.lexicon,
        answer_scorers=scorers.answer,
        answer_thresholds=config.answer_thresholds,
        strict_thresholds=config.strict_thresholds,
        toxicity=scorers.toxicity,
        band=cascade.band if cascade else (0.0, 1.0),
        route_groups=cascade.route_groups if cascade else False,
        members=scorers.members,
    )


def build_first_stage(config: ModeratorConfig, scorers: Scorers, moderator: OutputModerator) -> ModeratorFirstStage:
    """The cheap stage for the ingress, versioned by the config and the models' provenance."""
    provenance = [scorers.toxicity.provenance if scorers.toxicity else None]
    provenance += [scorer.model.provenance for scorer in scorers.answer if isinstance(scorer, HarmfulAnswerScorer)]
    return ModeratorFirstStage(stage_version(provenance, config), moderator.first_stage())


def observe(assessments: list[Assessment]) -> list[Verdict]:
    """The verdicts, with their scores and cascade stage counted (also for the ingress's first stage)."""
    verdicts = [assessment.verdict for assessment in assessments]
    observe_scores("moderator", verdicts)
    band = sum(assessment.dear for assessment in assessments)
    if band:
        TEXTS.inc(band, tags={"stage": "band"})
    if len(assessments) - band:
        TEXTS.inc(len(assessments) - band, tags={"stage": "cheap"})
    return verdicts


class Moderator:
    def __init__(self) -> None:
        self.config: ModeratorConfig | None = None
        self._scorers = Scorers()
        self._moderator: OutputModerator | None = None
        self._first_stage: ModeratorFirstStage | None = None

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        config = ModeratorConfig.model_validate(user_config)
        scorers = self._scorers
        if self.config is None or self.config.load_key() != config.load_key():
            scorers = load_scorers(config)
        moderator = build_moderator(config, scorers)
        self._first_stage = build_first_stage(config, scorers, moderator)
        self._scorers, self._moderator = scorers, moderator
        self.moderate.set_max_batch_size(config.max_batch_size)
        self.moderate.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.config = config

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def moderate(self, texts: list[str], questions: list[str], strict: list[bool]) -> list[Verdict]:
        """One call per text: `moderate(text, question, strict)`, question being what the text answers ("" when
        there is none), strict whether the request runs on the strict policy. Serve gathers concurrent calls into
        one model batch. A verdict that does not block may carry `redactions`: spans of the text to replace before
        it is delivered."""
        return observe(self._moderator.assess(texts, questions, strict))

    async def moderate_many(self, texts: list[str], strict: bool) -> list[Verdict]:
        """Many texts with no question in one call (a `/v1/moderations` array): one model batch."""
        return observe(self._moderator.assess(texts, [""] * len(texts), [strict] * len(texts)))

    async def first_stage(self, known: str | None = None) -> ModeratorFirstStage | None:
        """The cheap stage for the ingress to run in process (classifiers.moderation.ModeratorFirstStage); None
        when the caller already holds this version."""
        return unless_known(self._first_stage, known)

    async def flagged_spans(self, text: str) -> list[tuple[int, int]]:
        """Where this policy's rules match `text`: the reviewer console marks them in an answer under review."""
        return self._moderator.rule_spans(text)

    async def decoding_bans(self) -> tuple[str, ...]:
        """What the Generator bans from decoding on this policy's behalf (ModeratorConfig.decoding_bans)."""
        return self.config.decoding_bans()

    async def ready(self) -> bool:
        return self._moderator is not None
