"""Moderator deployment: secrets and personal data, swear words and slurs, deny-list, ML models (Detoxify, a
profanity model, the intent ensemble on question + answer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ray import serve

from classifiers.answer_intent import HarmfulAnswerScorer
from classifiers.moderation import OutputModerator
from classifiers.paths import resolve_model_path
from classifiers.patterns import PatternSet
from classifiers.profanity_model import ProfanityScorer
from classifiers.scoring import Scorer
from classifiers.toxicity_model import DetoxifyScorer
from classifiers.verdict import Verdict
from deployments.config import ModeratorConfig
from deployments.devices import pick_device
from deployments.intent_classifier import load_intent_model
from deployments.scores import observe_scores


@dataclass(frozen=True)
class Scorers:
    """The loaded models: `text` score the answer alone, `answer` the answer in the context of its question."""

    text: list[Scorer] = field(default_factory=list)
    answer: list[Scorer] = field(default_factory=list)


def load_scorers(config: ModeratorConfig) -> Scorers:
    scorers: list[Scorer] = []
    if config.detoxify is not None:
        scorers.append(
            DetoxifyScorer(
                checkpoint=resolve_model_path(config.detoxify.checkpoint),
                config_dir=resolve_model_path(config.detoxify.config_dir),
                device=pick_device(config.detoxify.device),
            )
        )
    if config.profanity_model:
        scorers.append(ProfanityScorer())
    answer = [HarmfulAnswerScorer(load_intent_model(config.answer_intent))] if config.answer_intent else []
    return Scorers(scorers, answer)


def build_moderator(config: ModeratorConfig, scorers: Scorers) -> OutputModerator:
    """The output moderation stack a config describes, around already loaded scorers."""
    return OutputModerator(
        PatternSet(list(config.denylist), layer="moderator"),
        scorers.text,
        config.thresholds,
        config.sensitive_data,
        config.lexicon,
        answer_scorers=scorers.answer,
        answer_thresholds=config.answer_thresholds,
        strict_thresholds=config.strict_thresholds,
    )


class Moderator:
    def __init__(self) -> None:
        self.config: ModeratorConfig | None = None
        self._scorers = Scorers()
        self._moderator: OutputModerator | None = None

    def reconfigure(self, user_config: dict) -> None:
        config = ModeratorConfig.model_validate(user_config)
        if self.config is None or self.config.load_key() != config.load_key():
            self._scorers = load_scorers(config)
        self._moderator = build_moderator(config, self._scorers)
        self.moderate.set_max_batch_size(config.max_batch_size)
        self.config = config

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def moderate(self, texts: list[str], questions: list[str], strict: list[bool]) -> list[Verdict]:
        """One call per text: `moderate(text, question, strict)`, question being what the text answers ("" when
        there is none), strict whether the request runs on the strict policy. Serve gathers concurrent calls into
        one model batch. A verdict that does not block may carry `redactions`: spans of the text to replace before
        it is delivered."""
        verdicts = self._moderator.moderate(texts, questions, strict)
        observe_scores("moderator", verdicts)
        return verdicts

    async def moderate_many(self, texts: list[str], strict: bool) -> list[Verdict]:
        """Many texts with no question in one call (a `/v1/moderations` array): one model batch."""
        verdicts = self._moderator.moderate(texts, [""] * len(texts), [strict] * len(texts))
        observe_scores("moderator", verdicts)
        return verdicts

    async def flagged_spans(self, text: str) -> list[tuple[int, int]]:
        """Where this policy's rules match `text`: the reviewer console marks them in an answer under review."""
        return self._moderator.rule_spans(text)

    async def decoding_bans(self) -> tuple[str, ...]:
        """What the Generator bans from decoding on this policy's behalf (ModeratorConfig.decoding_bans)."""
        return self.config.decoding_bans()

    async def ready(self) -> bool:
        return self._moderator is not None
