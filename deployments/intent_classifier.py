"""IntentClassifier deployment: the input-side ML ensemble, batched across concurrent requests, and the optional
safety LLM asked about its review band."""

from __future__ import annotations

import asyncio
import os

from ray import serve
from ray.serve import metrics

from classifiers.embeddings import SentenceEmbedder
from classifiers.intent import IntentAnalyzer, IntentFirstStage, ReviewJudge, Turn
from classifiers.intent_model import IntentModel
from classifiers.paths import resolve_model_path
from classifiers.safety_judge import ChatSafetyJudge, Judgement
from classifiers.verdict import Verdict
from deployments.config import ChatJudgeEndpoint, IntentClassifierConfig, IntentJudgeConfig, IntentModelConfig
from deployments.devices import cpu_threads
from deployments.first_stages import stage_version, unless_known
from deployments.live_config import keeps_running_policy
from deployments.scores import observe_scores

JUDGE_ANSWERS = metrics.Counter(
    "safeserve_intent_judge_answers",
    description="Review-band prompts the IntentClassifier's safety LLM was asked about, by its answer: `unsafe`, "
    "`safe`, or `none` (no usable answer within its timeout: the prompt takes `on_error`).",
    tag_keys=("outcome",),
)


def load_intent_model(config: IntentModelConfig) -> IntentModel:
    embedder = SentenceEmbedder(resolve_model_path(config.embedding_path), threads=cpu_threads(config.threads))
    return IntentModel.load(resolve_model_path(config.model_path), embedder, config.embed_band)


def open_chat_judge(config: ChatJudgeEndpoint) -> ChatSafetyJudge:
    """A client of the safety LLM a config names (no request is made)."""
    return ChatSafetyJudge(
        config.url,
        config.model,
        config.format,
        api_key=os.environ.get(config.api_key_env) if config.api_key_env else None,
        timeout_s=config.timeout_s,
        concurrency=config.concurrency,
        unsafe_score=config.unsafe_score,
    )


def review_judge(config: IntentJudgeConfig, client: ChatSafetyJudge) -> ReviewJudge:
    """The review band's judge, its answers counted."""

    def ask(prompts: list[str]) -> list[Judgement | None]:
        answers = client.assess(prompts)
        for answer in answers:
            outcome = "none" if answer is None else "unsafe" if answer.unsafe else "safe"
            JUDGE_ANSWERS.inc(tags={"outcome": outcome})
        return answers

    return ReviewJudge(config.name, ask, config.on_unsafe, config.on_safe, config.on_error)


class IntentClassifier:
    """All configuration arrives through `reconfigure` (Serve's `user_config`), also at start-up."""

    def __init__(self) -> None:
        self.config: IntentClassifierConfig | None = None
        self._model: IntentModel | None = None
        self._analyzer: IntentAnalyzer | None = None
        self._first_stage: IntentFirstStage | None = None
        self._judge_client: ChatSafetyJudge | None = None
        self._judge: ReviewJudge | None = None

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        config = IntentClassifierConfig.model_validate(user_config)
        if self._model is None or self.config is None or self.config.load_key() != config.load_key():
            self._model = load_intent_model(config)  # the last step that can fail: nothing is applied before it
        if self.config is None or self.config.judge != config.judge:
            if self._judge_client is not None:
                self._judge_client.close()
            self._judge_client = open_chat_judge(config.judge) if config.judge else None
        self._judge = review_judge(config.judge, self._judge_client) if config.judge else None
        self._model.embed_band = config.embed_band
        self._analyzer = IntentAnalyzer([self._model], config.thresholds, config.strict_thresholds)
        self._first_stage = IntentFirstStage(
            stage_version(self._model.provenance, config),
            self._model.first_stage(),
            IntentAnalyzer([], config.thresholds, config.strict_thresholds),  # the policy, without the models
            judged=config.judge is not None,
        )
        self.classify.set_max_batch_size(config.max_batch_size)
        self.classify.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.config = config

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def classify(self, conversations: list[list[Turn]], strict: list[bool]) -> list[Verdict]:
        """One call per request: `classify(turns, strict)`, its untrusted turns (each as its views) and whether it
        runs on the strict policy. Serve gathers concurrent calls into a batch."""
        return await self._settled(conversations, self._analyzer.classify(conversations, strict))

    async def classify_many(self, conversations: list[list[Turn]], strict: bool) -> list[Verdict]:
        """Many conversations in one call (bulk screening, evaluation): one model batch, no waiting for others."""
        return await self._settled(conversations, self._analyzer.classify(conversations, [strict] * len(conversations)))

    async def _settled(self, conversations: list[list[Turn]], verdicts: list[Verdict]) -> list[Verdict]:
        """The models' verdicts, the review band's settled by the judge if there is one; scores observed."""
        observe_scores("intent", verdicts)
        judge = self._judge
        if judge is None:
            return verdicts
        # Off the event loop: a slow judge must not stall the replica's other calls (first_stage, ready).
        return await asyncio.to_thread(judge.settle, conversations, verdicts)

    async def first_stage(self, known: str | None = None) -> IntentFirstStage | None:
        """The first stage for the ingress to run in process (classifiers.intent.IntentFirstStage); None when
        the caller already holds this version."""
        return unless_known(self._first_stage, known)

    async def ready(self) -> bool:
        return self._analyzer is not None
