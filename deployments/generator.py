"""Generator deployment: steering applied here, so every backend receives the same guarded prompt.

The backend is chosen in config (`transformers`, `openai_upstream` or `vllm`): a model run here gets concurrent
requests gathered into batches, in a thread; a model server (an upstream, or the application's own vLLM
LLMServer, whose handle the builder binds here), which batches itself, gets each request relayed as it comes, on
the event loop. SAFESERVE_GENERATOR_BACKEND,
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
from deployments.generation import (
    Completion,
    GeneratorBackend,
    Message,
    SamplingParams,
    ServerBackend,
    StreamEnd,
    ToolCall,
)
from deployments.live_config import keeps_running_policy
from deployments.logs import get_logger
from deployments.openai_upstream_backend import OpenAIUpstreamBackend
from deployments.transformers_backend import TransformersBackend
from deployments.vllm_backend import VLLMBackend

_BACKENDS = {"transformers": TransformersBackend, "openai_upstream": OpenAIUpstreamBackend}
_END = object()
logger = get_logger("generator")
POLICY_BANS_TTL_S = 5.0


async def coalesced(pieces: AsyncIterator[str | ToolCall | StreamEnd]) -> AsyncIterator[str | ToolCall | StreamEnd]:
    """The stream with the text pieces that arrived while the last yield was on its way joined into one: each
    yield is a message to the ingress, and an upstream faster than that hop would otherwise queue them one by one.
    Order is kept, and a fault in the stream is raised where it happened in it; closing this closes `pieces`."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump() -> None:
        try:
            async for piece in pieces:
                queue.put_nowait(piece)
        except Exception as exc:  # handed to the reader, in order
            queue.put_nowait(exc)
        queue.put_nowait(_END)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            text: list[str] = []
            for item in items:
                if isinstance(item, str):
                    text.append(item)
                    continue
                if text:
                    yield "".join(text)
                    text = []
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                yield item
            if text:
                yield "".join(text)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pieces.aclose()


class Generator:
    def __init__(
        self,
        moderator: DeploymentHandle | None = None,
        llm: DeploymentHandle | None = None,
        llm_section: dict | None = None,
    ) -> None:
        """`llm` is the LLMServer deployment built from `llm_section` (the args' `llm`), for backend vllm."""
        self.config: GeneratorConfig | None = None
        self._backend: GeneratorBackend | ServerBackend | None = None
        self._moderator = moderator
        self._llm = llm
        self._llm_section = llm_section
        self._policy_bans: tuple[str, ...] = ()
        self._policy_bans_at = float("-inf")

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        config = GeneratorOverrides().apply(user_config)
        if self._backend is None or self.config is None or self.config.load_key() != config.load_key():
            self._backend = self._new_backend(config)  # the last step that can fail
        self._generate_batch.set_max_batch_size(config.max_batch_size)
        self.config = config

    def _new_backend(self, config: GeneratorConfig) -> GeneratorBackend | ServerBackend:
        if config.backend == "vllm":
            return VLLMBackend(self._llm, self._llm_section)
        return _BACKENDS[config.backend](config)

    def prompt_messages(self, messages: list[Message], tier: str | None = None) -> list[Message]:
        """Exactly what the model receives: the safety preamble, refusal examples, then the conversation."""
        return steer(messages, self.config.steering_for(tier), tool_turns=self._backend.tool_use)

    async def _banned(self) -> tuple[str, ...]:
        """The phrases to ban from decoding a model run here: the config's own and the output policy's (an upstream
        server cannot be constrained; the Moderator catches them there)."""
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
            repetition_penalty=self.config.repetition_penalty,
            no_repeat_ngram_size=self.config.no_repeat_ngram_size,
        )

    async def generate(self, messages: list[Message], params: SamplingParams) -> Completion:
        """One request's answer."""
        if self._backend.runs_model:
            answer = await self._generate_batch(messages, params)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return await self._backend.generate(self.prompt_messages(messages, params.tier), self._params(params, ()))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _generate_batch(
        self, messages: list[list[Message]], params: list[SamplingParams]
    ) -> list[Completion | Exception]:
        """Serve gathers concurrent `generate` calls into one batch for a model run here. Generation blocks for
        seconds: it runs in a thread, keeping the event loop free for health checks. A batch that fails is run
        again one request at a time, so that a request the model cannot take fails alone: each gets its own
        answer or its own error."""
        prompts = [self.prompt_messages(m, p.tier) for m, p in zip(messages, params, strict=True)]
        banned = await self._banned()
        sampling = [self._params(p, banned) for p in params]
        try:
            return await asyncio.to_thread(self._backend.generate_batch, prompts, sampling)
        except Exception as exc:
            if len(prompts) == 1:
                return [exc]
            logger.warning("a batch of %d failed (%s); running its requests one by one", len(prompts), exc)
        return [await self._generate_one(prompt, p) for prompt, p in zip(prompts, sampling, strict=True)]

    async def _generate_one(self, prompt: list[Message], params: SamplingParams) -> Completion | Exception:
        try:
            return await asyncio.to_thread(self._backend.generate, prompt, params)
        except Exception as exc:
            return exc

    async def stream(
        self, messages: list[Message], params: SamplingParams
    ) -> AsyncIterator[str | ToolCall | StreamEnd]:
        if not self._backend.runs_model:
            pieces = self._backend.stream(self.prompt_messages(messages, params.tier), self._params(params, ()))
            async for piece in coalesced(pieces):
                yield piece
            return
        async for piece in self._stream_in_thread(messages, params):
            yield piece

    async def _stream_in_thread(
        self, messages: list[Message], params: SamplingParams
    ) -> AsyncIterator[str | ToolCall | StreamEnd]:
        """A model run here streams from a blocking iterator: each piece is read in a thread."""
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
            # a lock the close then waits on forever.
            if read is not None:
                await asyncio.wait([read])
            await asyncio.to_thread(pieces.close)

    async def ready(self) -> bool:
        return self._backend is not None
