"""Generator deployment: steering applied here, so every backend receives the same guarded prompt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from classifiers.steering import steer
from deployments.config import GeneratorConfig
from deployments.generation import Completion, GeneratorBackend, SamplingParams
from deployments.transformers_backend import TransformersBackend

_BACKENDS = {"transformers": TransformersBackend}
_END = object()


class Generator:
    def __init__(self) -> None:
        self.config: GeneratorConfig | None = None
        self._backend: GeneratorBackend | None = None

    def reconfigure(self, user_config: dict) -> None:
        config = GeneratorConfig.model_validate(user_config)
        if self._backend is None or self.config is None or self.config.load_key() != config.load_key():
            self._backend = _BACKENDS[config.backend](config)
        self.config = config

    def prompt_messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """Exactly what the model receives: the safety preamble, refusal examples, then the conversation."""
        return steer(messages, self.config.steering)

    def _params(self, params: SamplingParams) -> SamplingParams:
        return SamplingParams(
            max_tokens=min(params.max_tokens, self.config.max_new_tokens),
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
        )

    async def generate(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        # Generation blocks for seconds: keep the replica's event loop free for health checks and streams.
        return await asyncio.to_thread(self._backend.generate, self.prompt_messages(messages), self._params(params))

    async def stream(self, messages: list[dict[str, str]], params: SamplingParams) -> AsyncIterator[str]:
        pieces = self._backend.stream(self.prompt_messages(messages), self._params(params))
        try:
            while (piece := await asyncio.to_thread(next, pieces, _END)) is not _END:
                yield piece
        finally:
            await asyncio.to_thread(pieces.close)

    async def ready(self) -> bool:
        return self._backend is not None
