"""A local append-only file for review items accepted while Redis is unreachable, replayed once it returns.

Each line is one item with its id already assigned; the queue's enqueue is idempotent by id, so a replay that
is interrupted and run again cannot queue an item twice. Lines are flushed and fsync'd before the enqueue
call returns: an item the caller was told is accepted survives a crash of this replica.

ReviewQueue replicas on one host share the file, so appends and replays take an exclusive `flock` on a lock
file beside it (the spool itself is replaced by a replay, so it cannot carry the lock): a replay rewriting the
file cannot drop a line another replica appended meanwhile.

A line that is not an item (an append torn by a crash, an item of an older version) cannot stop the replay,
which would keep every later item and the queue's sweep stuck behind it: it is moved, as it was, to a
quarantine file beside the spool (`<spool>.quarantine`) for an operator to read, and the replay goes on.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from deployments.review_store import ReviewItem

LOCK_POLL_S = 0.01


@dataclass(frozen=True)
class Replay:
    replayed: int  # items handed over
    quarantined: int  # lines that were not items, moved to the quarantine file


class ReviewSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.quarantine_path = path.with_name(path.name + ".quarantine")
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """This replica's tasks one at a time, and one replica at a time. The flock is polled rather than
        waited for, so the event loop is never blocked while another replica replays."""
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.lock_path.open("a") as lock:
                while True:
                    try:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(LOCK_POLL_S)
                try:
                    yield
                finally:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    async def append(self, item: ReviewItem) -> None:
        async with self._exclusive():
            with self.path.open("a", encoding="utf-8") as spool:
                spool.write(item.model_dump_json() + "\n")
                spool.flush()
                os.fsync(spool.fileno())

    def pending(self) -> int:
        if not self.path.is_file():
            return 0
        with self.path.open(encoding="utf-8") as spool:
            return sum(1 for line in spool if line.strip())

    async def replay(self, put: Callable[[ReviewItem], Awaitable[bool]]) -> Replay:
        """Hand every spooled item to `put`, oldest first; what was handed over leaves the file, and a line that
        is not an item goes to the quarantine file. Stops at the first failure of `put` (Redis still away),
        keeping that item and the rest."""
        async with self._exclusive():
            if not self.path.is_file():
                return Replay(0, 0)
            lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
            done = quarantined = 0
            try:
                for line in lines:
                    try:
                        item = ReviewItem.model_validate_json(line)
                    except ValidationError:
                        self._quarantine(line)
                        quarantined += 1
                    else:
                        await put(item)
                    done += 1
            finally:
                rest = lines[done:]
                if rest:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text("".join(line + "\n" for line in rest), encoding="utf-8")
                    os.replace(tmp, self.path)
                else:
                    self.path.unlink()
            return Replay(done - quarantined, quarantined)

    def _quarantine(self, line: str) -> None:
        with self.quarantine_path.open("a", encoding="utf-8") as quarantine:
            quarantine.write(line + "\n")
            quarantine.flush()
            os.fsync(quarantine.fileno())
