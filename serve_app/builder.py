"""The application builder: one validated config in, the bound Serve graph out.

`serve run configs/local.yaml` (or `serve deploy`) calls `build_app(args)`; the `deployments:` section of the
Serve config then overrides the defaults below (replicas, autoscaling, resources, `user_config`) by name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from ray import serve
from ray.serve import Application

from deployments.config import GeneratorConfig, IntentClassifierConfig, ModeratorConfig, ReviewQueueConfig
from deployments.generator import Generator
from deployments.intent_classifier import IntentClassifier
from deployments.moderator import Moderator
from deployments.review_queue import ReviewQueue
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


_LIGHT = {"num_cpus": 0.25}


def _options(name: str, user_config: BaseModel, **options: Any) -> dict[str, Any]:
    return {"name": name, "user_config": user_config.model_dump(mode="json"), **options}


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
    # The Generator asks the Moderator for the output policy's phrases to ban from decoding.
    moderator_node = moderator.bind()
    return ingress.bind(intent.bind(), generator.bind(moderator_node), moderator_node, reviews.bind())
