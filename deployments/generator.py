"""Generator deployment: steering applied here, so every backend receives the same guarded prompt.

The backend is chosen in config (`transformers` or `openai_upstream`); SAFESERVE_GENERATOR_BACKEND,
SAFESERVE_UPSTREAM_URL and SAFESERVE_UPSTREAM_MODEL in the environment override it (GeneratorOverrides).
Constrained decoding bans the config's `banned_phrases` and the output policy's plain-phrase block rules, which
the Moderator (bound to this deployment by the builder) is asked for, at most every `POLICY_BANS_TTL_S`
seconds: a `serve deploy` of its deny-list applies to decoding within that time, without a Moderator call
on every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from ray import serve
from ray.serve.handle import DeploymentHandle

from classifiers.steering import steer
from deployments.config import GeneratorConfig, GeneratorOverrides
from deployments.generation import Completion, GeneratorBackend, Message, SamplingParams, StreamEnd, ToolCall
from deployments.openai_upstream_backend import OpenAIUpstreamBackend
from deployments.transformers_backend import TransformersBackend

_BACKENDS = {"transformers": TransformersBackend, "openai_upstream": OpenAIUpstreamBackend}
_END = object()
POLICY_BANS_TTL_S = 5.0


class Generator:
    def __init__(self, moderator: DeploymentHandle | None = None) -> None:
        self.config: GeneratorConfig | None = None
        self._backend: GeneratorBackend | None = None
        self._moderator = moderator
        self._policy_bans: tuple[str, ...] = ()
        self._policy_bans_at = float("-inf")

    def reconfigure(self, user_config: dict) -> None:
        config = GeneratorOverrides().apply(user_config)
        if self._backend is None or self.config is None or self.config.load_key() != config.load_key():
            self._backend = _BACKENDS[config.backend](config)
        self.generate.set_max_batch_size(config.max_batch_size)
        self.config = config

    def prompt_messages(self, messages: list[Message], tier: str | None = None) -> list[Message]:
        """Exactly what the model receives: the safety preamble, refusal examples, then the conversation."""
        return steer(messages, self.config.steering_for(tier), tool_turns=self._backend.tool_use)

    async def _banned(self) -> tuple[str, ...]:
        """The phrases to ban from decoding: the config's own and the output policy's (transformers backend only:
        an upstream server cannot be constrained, the Moderator catches them there)."""
        if self.config.backend != "transformers":
            return ()
        if self._moderator is not None and time.monotonic() - self._policy_bans_at > POLICY_BANS_TTL_S:
            self._policy_bans = await self._moderator.decoding_bans.remote()
            self._policy_bans_at = time.monotonic()
        return tuple(dict.fromkeys((*self.config.banned_phrases, *self._policy_bans)))

    def _params(self, params: SamplingParams, banned: tuple[str, ...]) -> SamplingParams:
        return replace(
            params,
            max_tokens=min(params.max_tokens, self.config.max_new_tokens),
            stop=tuple(dict.fromkeys((*params.stop, *self.config.stop))),
            banned=banned,
        )

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def generate(self, messages: list[list[Message]], params: list[SamplingParams]) -> list[Completion]:
        """One call per request, `generate(messages, params)`; Serve gathers concurrent calls into one batch.
        Generation blocks for seconds: it runs in a thread, keeping the event loop free for health checks."""
        prompts = [self.prompt_messages(m, p.tier) for m, p in zip(messages, params, strict=True)]
        banned = await self._banned()
        return await asyncio.to_thread(self._backend.generate_batch, prompts, [self._params(p, banned) for p in params])

    async def stream(
        self, messages: list[Message], params: SamplingParams
    ) -> AsyncIterator[str | ToolCall | StreamEnd]:
        banned = await self._banned()
        pieces = self._backend.stream(self.prompt_messages(messages, params.tier), self._params(params, banned))
        read: asyncio.Future | None = None
        try:
            while True:
                read = asyncio.ensure_future(asyncio.to_thread(next, pieces, _END))
                # shielded: a cancelled request leaves the read running in its thread, and it must be awaited
                if (piece := await asyncio.shield(read)) is _END:
                    break
                yield piece
        finally:
            # The backend's stream can only be closed once its thread has left next() ("generator already
            # executing"). Left open, the garbage collector would close it at some later moment, possibly inside
            # the HTTP client's connection pool while that thread holds the pool's lock, which the close then
            # waits on forever: every later request to the upstream hung behind it.
            if read is not None:
                await asyncio.wait([read])
            await asyncio.to_thread(pieces.close)

    async def ready(self) -> bool:
        return self._backend is not None
