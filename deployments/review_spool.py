"""A local append-only file for review items accepted while Redis is unreachable, replayed once it returns.

Each line is one item with its id already assigned; the queue's enqueue is idempotent by id, so a replay that
is interrupted and run again cannot queue an item twice. Lines are flushed and fsync'd before the enqueue
call returns: an item the caller was told is accepted survives a crash of this replica.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from deployments.review_store import ReviewItem


class ReviewSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def append(self, item: ReviewItem) -> None:
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as spool:
                spool.write(item.model_dump_json() + "\n")
                spool.flush()
                os.fsync(spool.fileno())

    def pending(self) -> int:
        if not self.path.is_file():
            return 0
        with self.path.open(encoding="utf-8") as spool:
            return sum(1 for line in spool if line.strip())

    async def replay(self, put: Callable[[ReviewItem], Awaitable[bool]]) -> int:
        """Hand every spooled item to `put`, oldest first; what was handed over leaves the file. Stops at the
        first failure (Redis still away), keeping that item and the rest. Returns how many were handed over."""
        async with self._lock:
            if not self.path.is_file():
                return 0
            lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            done = 0
            try:
                for line in lines:
                    await put(ReviewItem.model_validate_json(line))
                    done += 1
            finally:
                rest = lines[done:]
                if rest:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text("".join(line + "\n" for line in rest), encoding="utf-8")
                    os.replace(tmp, self.path)
                else:
                    self.path.unlink()
            return done
