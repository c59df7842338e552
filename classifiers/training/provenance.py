"""Fields every artefact's provenance.json shares."""

from __future__ import annotations

import hashlib
import platform
import sys
from datetime import UTC, datetime


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_info() -> dict[str, str]:
    return {
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
