"""Per-request stage timings, reported in the standard `Server-Timing` header and to metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + (time.perf_counter() - start) * 1000

    def total_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def header(self) -> str:
        """e.g. `auth;dur=0.4, classify;dur=6.1, total;dur=912.3` (milliseconds)."""
        parts = [f"{name};dur={ms:.2f}" for name, ms in self.stages.items()]
        return ", ".join([*parts, f"total;dur={self.total_ms():.2f}"])
