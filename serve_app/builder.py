"""The application builder: one validated config in, the bound Serve graph out.

`serve run configs/local.yaml` (or `serve deploy`) calls `build_app(args)`; the `deployments:` section of the
Serve config then overrides the defaults below (replicas, autoscaling, resources, `user_config`) by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from ray import serve
from ray.serve import Application

from deployments.config import GeneratorConfig, IntentClassifierConfig, ModeratorConfig, ReviewQueueConfig
from deployments.generator import Generator
from deployments.intent_classifier import IntentClassifier
from deployments.moderator import Moderator
from deployments.review_queue import ReviewQueue
from deployments.vllm_backend import checked_llm_section
from serve_app.config import IngressConfig
from serve_app.ingress import Ingress


class AppConfig(BaseModel):
    """Builder arguments: the starting policy of each deployment (each may be overridden by `user_config`)."""

    model_config = ConfigDict(extra="forbid")

    ingress: IngressConfig = IngressConfig()
    intent_classifier: IntentClassifierConfig = IntentClassifierConfig()
    generator: GeneratorConfig = GeneratorConfig()
    moderator: ModeratorConfig = ModeratorConfig()
    review_queue: ReviewQueueConfig = ReviewQueueConfig()
    llm: dict[str, Any] | None = Field(
        None,
        description="A Ray Serve LLM config (LLMConfig): the vLLM engine the Generator's backend vllm calls, as an "
        "LLMServer deployment of this application. Part of the args, so a change restarts every replica.",
    )

    @field_validator("llm")
    @classmethod
    def _llm_config(cls, section: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if section is None else checked_llm_section(section)


_LIGHT = {"num_cpus": 0.25}


def _options(name: str, user_config: BaseModel, **options: Any) -> dict[str, Any]:
    return {"name": name, "user_config": user_config.model_dump(mode="json"), **options}


def _llm_server(section: dict[str, Any]) -> Application:
    try:
        from deployments.llm_server import build
    except ImportError as exc:
        raise RuntimeError(
            f"the `llm` section needs vLLM where the application is built and run ({exc}): install SafeServe "
            "with its `vllm` extra (the cuda image does)"
        ) from exc
    return build(section)


def build_app(args: dict[str, Any] | None = None) -> Application:
    config = AppConfig.model_validate(args or {})
    intent = serve.deployment(IntentClassifier).options(
        **_options("IntentClassifier", config.intent_classifier, ray_actor_options=_LIGHT, max_ongoing_requests=64)
    )
    generator = serve.deployment(Generator).options(
        **_options("Generator", config.generator, ray_actor_options={"num_cpus": 1}, max_ongoing_requests=8)
    )
    moderator = serve.deployment(Moderator).options(
        **_options("Moderator", config.moderator, ray_actor_options=_LIGHT, max_ongoing_requests=64)
    )
    reviews = serve.deployment(ReviewQueue).options(
        **_options("ReviewQueue", config.review_queue, ray_actor_options={"num_cpus": 0.1})
    )
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        **_options("Ingress", config.ingress, ray_actor_options=_LIGHT, max_ongoing_requests=256)
    )
    # The Generator asks the Moderator for the output policy's phrases to ban from decoding, and the LLMServer,
    # if there is one, for its answers.
    moderator_node = moderator.bind()
    llm = _llm_server(config.llm) if config.llm else None
    generator_node = generator.bind(moderator_node, llm, config.llm)
    return ingress.bind(intent.bind(), generator_node, moderator_node, reviews.bind())
