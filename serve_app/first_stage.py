"""The first stages of the IntentClassifier and the Moderator, copied into the ingress and run there: most
prompts are decided by the intent model's n-gram member alone, and most answers by the Moderator's cheap members
(rules, the profanity model, the n-gram models); those skip the hop to the deployment.

Each deployment owns its models and its policy; the ingress asks it every `REFRESH_S` seconds whether its copy is
still current (a version string: the models' provenance and the deployment's config) and takes a new copy only
when it is not. A `serve deploy` of a policy therefore reaches the first stage within `REFRESH_S`; until a copy
arrives, and for every text inside a band, the deployment decides. A fault while refreshing keeps the copy the
ingress has: it is the policy the deployment last served. A Moderator whose policy has no first stage (a member
that reads every text) sends a copy that decides nothing.
"""

from __future__ import annotations

import asyncio

from ray.serve.handle import DeploymentHandle

from classifiers.intent import IntentFirstStage
from classifiers.moderation import ModeratorFirstStage
from deployments.logs import get_logger
from serve_app.metrics import INFRA_ERRORS

logger = get_logger("first_stage")
REFRESH_S = 2.0
FETCH_TIMEOUT_S = 60.0


class FirstStage:
    def __init__(self, intent: DeploymentHandle, moderator: DeploymentHandle) -> None:
        self._handles = {"intent_classifier": intent, "moderator": moderator}
        self.intent: IntentFirstStage | None = None
        self.moderator: ModeratorFirstStage | None = None
        self._task: asyncio.Task | None = None

    def ensure_refreshing(self) -> None:
        """Start the refresh loop on the running event loop, or restart it if it ended."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def refresh(self) -> None:
        await asyncio.gather(self._refresh("intent_classifier", "intent"), self._refresh("moderator", "moderator"))

    async def _refresh(self, layer: str, attribute: str) -> None:
        try:
            held = getattr(self, attribute)
            # By reference, through Ray's object store: a copy (tens of MB) is over the gRPC path's 4 MB limit.
            call = self._handles[layer].options(_by_reference=True).first_stage.remote(held.version if held else None)
            stage = await asyncio.wait_for(call, FETCH_TIMEOUT_S)
        except Exception as exc:  # the deployment restarting, a timeout: keep the copy, try again
            INFRA_ERRORS.inc(tags={"component": layer, "outcome": "first_stage_kept"})
            logger.warning("%s first stage not refreshed: %s", layer, exc.__class__.__name__)
            return
        if stage is not None:
            setattr(self, attribute, stage)
            logger.info("%s first stage updated", layer)

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)
