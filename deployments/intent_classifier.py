"""IntentClassifier deployment: the input-side ML ensemble, batched across concurrent requests."""

from __future__ import annotations

import hashlib
import json

from ray import serve

from classifiers.embeddings import SentenceEmbedder
from classifiers.intent import IntentAnalyzer, IntentFirstStage, Turn
from classifiers.intent_model import IntentModel
from classifiers.paths import resolve_model_path
from classifiers.verdict import Verdict
from deployments.config import IntentClassifierConfig, IntentModelConfig
from deployments.devices import cpu_threads
from deployments.live_config import keeps_running_policy
from deployments.scores import observe_scores


def load_intent_model(config: IntentModelConfig) -> IntentModel:
    embedder = SentenceEmbedder(resolve_model_path(config.embedding_path), threads=cpu_threads(config.threads))
    return IntentModel.load(resolve_model_path(config.model_path), embedder, config.embed_band)


class IntentClassifier:
    """All configuration arrives through `reconfigure` (Serve's `user_config`), also at start-up."""

    def __init__(self) -> None:
        self.config: IntentClassifierConfig | None = None
        self._model: IntentModel | None = None
        self._analyzer: IntentAnalyzer | None = None
        self._first_stage: IntentFirstStage | None = None

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        config = IntentClassifierConfig.model_validate(user_config)
        if self._model is None or self.config is None or self.config.load_key() != config.load_key():
            self._model = load_intent_model(config)  # the last step that can fail: nothing is applied before it
        self._model.embed_band = config.embed_band
        self._analyzer = IntentAnalyzer([self._model], config.thresholds, config.strict_thresholds)
        # The same version on every replica of this config and model, so an ingress copies the stage once.
        model_version = hashlib.sha256(json.dumps(self._model.provenance, sort_keys=True).encode()).hexdigest()
        self._first_stage = IntentFirstStage(
            f"{model_version[:16]}:{config.model_dump_json()}",
            self._model.first_stage(),
            IntentAnalyzer([], config.thresholds, config.strict_thresholds),  # the policy, without the models
        )
        self.classify.set_max_batch_size(config.max_batch_size)
        self.classify.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        self.config = config

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def classify(self, conversations: list[list[Turn]], strict: list[bool]) -> list[Verdict]:
        """One call per request: `classify(turns, strict)`, its untrusted turns (each as its views) and whether it
        runs on the strict policy. Serve gathers concurrent calls into a batch."""
        verdicts = self._analyzer.classify(conversations, strict)
        observe_scores("intent", verdicts)
        return verdicts

    async def classify_many(self, conversations: list[list[Turn]], strict: bool) -> list[Verdict]:
        """Many conversations in one call (bulk screening, evaluation): one model batch, no waiting for others."""
        verdicts = self._analyzer.classify(conversations, [strict] * len(conversations))
        observe_scores("intent", verdicts)
        return verdicts

    async def first_stage(self, known: str | None = None) -> IntentFirstStage | None:
        """The first stage for the ingress to run in process (classifiers.intent.IntentFirstStage); None when
        the caller already holds this version, so that asking often costs no copy of the model."""
        stage = self._first_stage
        return None if stage is None or stage.version == known else stage

    async def ready(self) -> bool:
        return self._analyzer is not None
