"""The Ingress deployment: no model, only the HTTP surface and the cheap in-process checks."""

from __future__ import annotations

from fastapi import FastAPI
from ray.serve.handle import DeploymentHandle

from deployments.live_config import keeps_running_policy
from deployments.logs import get_logger
from serve_app.config import IngressConfig, Settings
from serve_app.gateway import Gateway, Handles
from serve_app.main import create_app
from serve_app.stores import Stores

logger = get_logger("ingress")


class Ingress:
    def __init__(
        self,
        intent: DeploymentHandle,
        generator: DeploymentHandle,
        moderator: DeploymentHandle,
        reviews: DeploymentHandle,
    ) -> None:
        settings = Settings()
        if settings.admin_key is None:
            logger.warning("SAFESERVE_ADMIN_KEY is not set: the admin API accepts only keys with the admin role")
        handles = Handles(intent, generator, moderator, reviews)
        self.gateway = Gateway(handles, settings, stores=Stores.connect(settings))

    @keeps_running_policy
    def reconfigure(self, user_config: dict) -> None:
        self.gateway.configure(IngressConfig.model_validate(user_config))

    async def check_health(self) -> None:
        """Serve's periodic health check; it also keeps the gauge publisher and the first stage's refresh
        running."""
        self.gateway.ensure_gauges_published()
        self.gateway.first_stage.ensure_refreshing()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.gateway)
