"""The LLMServer deployment the `vllm` backend calls: Ray Serve LLM's, built from the `llm` section of the args.

Importing this module needs vLLM (Ray's LLMServer imports its request models), so the builder imports it only
when the application has an `llm` section, and the cluster's image must carry the `vllm` extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ray.llm._internal.serve.core.ingress.utils import _openai_json_wrapper
from ray.serve import Application
from ray.serve.llm import LLMConfig, LLMServer, build_llm_deployment
from ray.serve.llm.openai_api_models import ChatCompletionRequest

DEPLOYMENT_NAME = "LLMServer"


class GeneratorLLMServer(LLMServer):
    """Ray's LLMServer with a chat method for the Generator: plain data in and out."""

    async def chat_sse(self, body: dict[str, Any]) -> AsyncIterator[str]:
        """The chat completion `body` (an OpenAI request as JSON data), streamed as Ray's OpenAI ingress streams
        it: strings of `data: <json>` events, an error as an event too, ending with `data: [DONE]`."""
        async for packet in _openai_json_wrapper(await self.chat(ChatCompletionRequest.model_validate(body))):
            yield packet


def build(section: dict[str, Any]) -> Application:
    """The LLMServer bound from a validated `llm` section: Ray sizes its placement group from the engine's
    parallelism and accelerator, and its deployment_config (autoscaling included) applies as given."""
    return build_llm_deployment(
        LLMConfig.model_validate(section),
        deployment_cls=GeneratorLLMServer,
        override_serve_options={"name": DEPLOYMENT_NAME},
    )
