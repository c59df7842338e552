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
        if name == "LLMServer":
            raise ConfigError("LLMServer takes its options from the args' `llm` (deployment_config), not `deployments`")
        if name not in DEPLOYMENT_SECTIONS:
            raise ConfigError(f"unknown deployment '{name}' (expected one of {', '.join(DEPLOYMENT_SECTIONS)})")
        if "user_config" in deployment:
            merged[DEPLOYMENT_SECTIONS[name]] = deployment["user_config"]
    try:
        # The Generator's environment overrides (SAFESERVE_GENERATOR_BACKEND, ...) are part of what will run.
        merged["generator"] = GeneratorOverrides().merged(merged.get("generator") or {})
        config = AppConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(str(exc)) from exc
    _check_llm_is_used(config)
    return config


def _check_llm_is_used(config: AppConfig) -> None:
    """Backend vllm and the args' `llm` go together: one needs the other, and an LLMServer the Generator does not
    call would hold its GPUs for nothing."""
    backend = config.generator.backend
    if backend == "vllm" and config.llm is None:
        raise ConfigError("the Generator's backend vllm needs `llm` in the application's args (a Ray Serve LLM config)")
    if backend != "vllm" and config.llm is not None:
        raise ConfigError(
            f"the args' `llm` starts a vLLM engine that only backend vllm calls, and the Generator's is {backend}: "
            "remove `llm`, or set the backend to vllm"
        )


def check_file(path: Path, app_name: str = APP_NAME) -> AppConfig:
    try:
        return app_config(load_serve_config(path), app_name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
