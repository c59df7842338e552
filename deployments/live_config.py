"""A policy deployed live (`serve deploy` with a changed `user_config`) that a replica cannot apply is refused,
and the replica goes on serving the policy it has.

Serve stops a replica whose `reconfigure` raises and starts another on the same config, which fails the same
way: an invalid threshold would take every replica of the deployment down in turn. So once a replica serves a
valid policy, a config it cannot apply (one that fails validation, or names a model that does not load) is
logged as an error naming the field, and `safeserve_config_rejected` is set for the deployment until a config
applies. At start-up there is no policy to keep, and the error is Serve's: the replica does not start, and
`serve status` shows the message.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ray.serve import metrics

from deployments.logs import get_logger

logger = get_logger("live_config")
CONFIG_REJECTED = metrics.Gauge(
    "safeserve_config_rejected",
    description="1 while a deployment's replica refuses the user_config deployed last and serves its previous "
    "policy (its log says why), else 0.",
    tag_keys=("deployment",),
)

# Ray drops a gauge value that is not set again within two metric report intervals: a thread of the replica's
# process sets it again every REFRESH_S.
REFRESH_S = 1.0
Deployment = TypeVar("Deployment")
APPLIED = "_live_config_applied"
_rejected: dict[str, int] = {}  # per deployment class in this process: 1 while its last config was refused
_publisher: threading.Thread | None = None


def _set_rejected(deployment: str, rejected: bool) -> None:
    global _publisher
    _rejected[deployment] = int(rejected)
    CONFIG_REJECTED.set(int(rejected), tags={"deployment": deployment})
    if _publisher is None:
        _publisher = threading.Thread(target=_publish_forever, name="config-rejected-gauge", daemon=True)
        _publisher.start()


def _publish_forever() -> None:
    while True:
        time.sleep(REFRESH_S)
        for deployment, value in list(_rejected.items()):
            CONFIG_REJECTED.set(value, tags={"deployment": deployment})


def keeps_running_policy(
    reconfigure: Callable[[Deployment, dict], None],
) -> Callable[[Deployment, dict], None]:
    """Wrap a deployment's `reconfigure`, which must apply nothing before its last fallible step, so that a
    failure after start-up leaves the running policy in place (see the module docstring)."""

    @functools.wraps(reconfigure)
    def guarded(self: Deployment, user_config: dict) -> None:
        deployment = type(self).__name__
        try:
            reconfigure(self, user_config)
        except Exception as exc:
            if not getattr(self, APPLIED, False):
                raise
            _set_rejected(deployment, True)
            logger.error(
                "%s: the deployed user_config was refused and the previous policy keeps serving; fix it and deploy "
                "again (check it first with `safeserve config check`): %s: %s",
                deployment,
                exc.__class__.__name__,
                exc,
            )
            return
        setattr(self, APPLIED, True)
        _set_rejected(deployment, False)

    return guarded
