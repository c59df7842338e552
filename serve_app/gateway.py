"""The ingress's state: handles to the model deployments, Redis-backed stores and the live policy.

Every call to a safety layer goes through `Gateway.call`, which applies the layer's timeout and turns any
fault into the layer's fail mode: closed (503, the default) or open (allowed, counted and logged).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from classifiers.patterns import PatternSet
from classifiers.verdict import Verdict
from deployments.logs import get_logger
from serve_app.auth import KeyStore
from serve_app.config import IngressConfig, Settings
from serve_app.errors import ServiceUnavailable
from serve_app.first_stage import FirstStage
from serve_app.incidents import IncidentRecorder
from serve_app.limits import RateLimiter
from serve_app.metrics import INFRA_ERRORS, KILL_SWITCHES
from serve_app.reputation import ReputationStore
from serve_app.stores import Stores
from serve_app.tokens import TokenCounter

logger = get_logger("gateway")
GAUGE_REFRESH_S = 1.0


@dataclass(frozen=True)
class Handles:
    intent: DeploymentHandle
    generator: DeploymentHandle
    moderator: DeploymentHandle
    reviews: DeploymentHandle

    def all(self) -> dict[str, DeploymentHandle]:
        return {
            "intent_classifier": self.intent,
            "generator": self.generator,
            "moderator": self.moderator,
            "review_queue": self.reviews,
        }


async def _resolve(response: DeploymentResponse) -> Any:
    return await response


class Gateway:
    def __init__(
        self,
        handles: Handles,
        settings: Settings,
        config: IngressConfig | None = None,
        stores: Stores | None = None,
    ) -> None:
        """`stores` default to new ones on the Redis of `settings`."""
        self.handles = handles
        self.settings = settings
        self.stores = stores or Stores.connect(settings)
        self.first_stage = FirstStage(handles.intent, handles.moderator)
        self.started_at = int(time.time())
        self._gauge_task: asyncio.Task | None = None
        self.configure(config or IngressConfig())

    @property
    def redis(self) -> aioredis.Redis:
        return self.stores.redis

    @property
    def keys(self) -> KeyStore:
        return self.stores.keys

    @property
    def incidents(self) -> IncidentRecorder:
        return self.stores.incidents

    @property
    def limiter(self) -> RateLimiter:
        return self.stores.limiter

    @property
    def reputation(self) -> ReputationStore:
        return self.stores.reputation

    def configure(self, config: IngressConfig) -> None:
        """Swap the live policy in whole; requests in flight keep the objects they already read."""
        input_patterns = PatternSet(list(config.input_patterns), layer="input_patterns")
        self.tokens = TokenCounter(config.tokenizer_path)
        self.input_patterns, self.config = input_patterns, config
        self.publish_gauges()
        if config.safe_mode or config.stop_generation:
            logger.warning("kill switches: safe_mode=%s stop_generation=%s", config.safe_mode, config.stop_generation)

    def publish_gauges(self) -> None:
        for switch in ("safe_mode", "stop_generation"):
            KILL_SWITCHES.set(int(getattr(self.config, switch)), tags={"switch": switch})

    def ensure_gauges_published(self) -> None:
        """Ray drops a gauge value that is not set again within two metric report intervals, so the kill-switch
        gauges are re-set every GAUGE_REFRESH_S by a task on the replica's event loop."""
        if self._gauge_task is None or self._gauge_task.done():
            self._gauge_task = asyncio.get_running_loop().create_task(self._publish_gauges_forever())

    async def _publish_gauges_forever(self) -> None:
        while True:
            self.publish_gauges()
            await asyncio.sleep(GAUGE_REFRESH_S)

    async def call(
        self,
        component: str,
        response: DeploymentResponse,
        timeout_s: float,
        expected: tuple[type[Exception], ...] = (),
    ) -> Any:
        """Await a deployment call; a fault or timeout becomes ServiceUnavailable (counted and logged).

        Exceptions in `expected` are answers, not faults (e.g. an unknown review id), and pass through.
        """
        try:
            return await asyncio.wait_for(_resolve(response), timeout_s)
        except expected:
            raise
        except Exception as exc:
            response.cancel()
            INFRA_ERRORS.inc(tags={"component": component, "outcome": "error"})
            logger.error("%s failed: %s", component, exc.__class__.__name__, exc_info=not isinstance(exc, TimeoutError))
            raise ServiceUnavailable(
                f"The {component.replace('_', ' ')} is unavailable; the request was not processed.",
                code=f"{component}_unavailable",
            ) from exc

    async def safety_call(
        self, layer: str, response: DeploymentResponse, timeout_s: float, verdicts: int | None = None
    ) -> Verdict | list[Verdict]:
        """As `call`, for a safety layer: fail closed (raise) unless the policy says this layer fails open. A call
        answering a list of `verdicts` verdicts fails open with that many."""
        try:
            return await self.call(layer, response, timeout_s)
        except ServiceUnavailable:
            if self.config.fail_mode(layer) == "fail_closed":
                INFRA_ERRORS.inc(tags={"component": layer, "outcome": "fail_closed"})
                raise
            INFRA_ERRORS.inc(tags={"component": layer, "outcome": "fail_open"})
            logger.warning("%s unavailable: failing open as configured", layer)
            passed = Verdict(layer=layer, reasons=("fail_open",))
            return passed if verdicts is None else [passed] * verdicts
