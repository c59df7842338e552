"""The IntentClassifier's first stage, copied into the ingress and run there: most prompts are decided by its
n-gram member alone, and those skip the hop to the classifier.

The classifier owns the model and the policy; the ingress asks it every `REFRESH_S` seconds whether its copy is
still current (a version string: the model's provenance and the classifier's config) and takes a new copy only
when it is not. A `serve deploy` of the classifier's policy therefore reaches the first stage within `REFRESH_S`;
until a copy arrives, and for every conversation with a text inside the model's band, the classifier decides.
A fault while refreshing keeps the copy the ingress has: it is the policy the classifier last served.
"""

from __future__ import annotations

import asyncio

from ray.serve.handle import DeploymentHandle

from classifiers.intent import IntentFirstStage
from deployments.logs import get_logger
from serve_app.metrics import INFRA_ERRORS

logger = get_logger("first_stage")
REFRESH_S = 2.0
FETCH_TIMEOUT_S = 60.0


class FirstStage:
    def __init__(self, intent: DeploymentHandle) -> None:
        self._intent = intent
        self.intent: IntentFirstStage | None = None
        self._task: asyncio.Task | None = None

    def ensure_refreshing(self) -> None:
        """Start the refresh loop on the running event loop, or restart it if it ended."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def refresh(self) -> None:
        known = self.intent.version if self.intent is not None else None
        # By reference, through Ray's object store: the copy (tens of MB) is over the gRPC path's 4 MB limit.
        call = self._intent.options(_by_reference=True).first_stage.remote(known)
        stage = await asyncio.wait_for(call, FETCH_TIMEOUT_S)
        if stage is not None:
            self.intent = stage
            logger.info("intent first stage updated")

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the classifier restarting, a timeout: keep the copy, try again
                INFRA_ERRORS.inc(tags={"component": "intent_classifier", "outcome": "first_stage_kept"})
                logger.warning("intent first stage not refreshed: %s", exc.__class__.__name__)
            await asyncio.sleep(REFRESH_S)
