"""Where SafeServe keeps its local state when nothing else is configured: `<repo>/.safeserve/`."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def home_dir() -> Path:
    return Path(os.environ.get("SAFESERVE_HOME", PROJECT_ROOT / ".safeserve"))


def models_dir() -> Path:
    return Path(os.environ.get("SAFESERVE_MODELS_DIR", home_dir() / "models"))


def resolve_model_path(path: str | Path) -> Path:
    """A relative model path is read against the models directory; absolute paths are used as they are."""
    path = Path(path)
    return path if path.is_absolute() else models_dir() / path
