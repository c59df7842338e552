"""Reading a Serve config file (configs/*.yaml) back into SafeServe's typed config.

The policy of each deployment lives in its `user_config` there, so that `serve deploy` can change it live;
this module validates all of it at once (for `safeserve config check`, `make run` and the tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from deployments.config import GeneratorOverrides
from serve_app.builder import AppConfig

APP_NAME = "safeserve"
DEPLOYMENT_SECTIONS = {
    "Ingress": "ingress",
    "IntentClassifier": "intent_classifier",
    "Generator": "generator",
    "Moderator": "moderator",
    "ReviewQueue": "review_queue",
}


class ConfigError(ValueError):
    pass


def load_serve_config(path: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def app_config(serve_config: dict[str, Any], app_name: str = APP_NAME) -> AppConfig:
    """The AppConfig a Serve config gives SafeServe: `args`, then each deployment's `user_config` on top, then
    the environment's Generator overrides."""
    apps = {app.get("name"): app for app in serve_config.get("applications", [])}
    if app_name not in apps:
        raise ConfigError(f"no application named '{app_name}' (found: {', '.join(map(str, apps)) or 'none'})")
    app = apps[app_name]
    merged: dict[str, Any] = dict(app.get("args") or {})
    for deployment in app.get("deployments", []):
        name = deployment.get("name")
        if name not in DEPLOYMENT_SECTIONS:
            raise ConfigError(f"unknown deployment '{name}' (expected one of {', '.join(DEPLOYMENT_SECTIONS)})")
        if "user_config" in deployment:
            merged[DEPLOYMENT_SECTIONS[name]] = deployment["user_config"]
    try:
        # The Generator's environment overrides (SAFESERVE_GENERATOR_BACKEND, ...) are part of what will run.
        merged["generator"] = GeneratorOverrides().merged(merged.get("generator") or {})
        return AppConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc


def check_file(path: Path, app_name: str = APP_NAME) -> AppConfig:
    try:
        return app_config(load_serve_config(path), app_name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
