"""How many llama.cpp threads to run now: all cores when idle, fewer when others compete.

llama.cpp's worker threads busy-wait for each other at every step of a forward pass.
When another CPU-bound process holds one of the cores, a thread that lost its core
holds up all the others while they spin, and throughput collapses (bench/threads.py,
2 cores: 5.0 rows/s idle with 2 threads, far below 1 row/s with 2 threads beside one
busy process, against 3.0 rows/s with 1 thread beside it). So the runtime counts the
runnable threads of *other* processes (``procs_running`` in /proc/stat less this
process's own running threads) at most once a second, and runs on the cores they leave
free, at least one. Off Linux, or with ``n_threads`` given, the count is fixed.
"""

from __future__ import annotations

import time
from pathlib import Path

from .model_files import default_threads

RECHECK_S = 1.0


def _procs_running() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _own_running() -> int:
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 : stat.rindex(")") + 3] == "R":
            count += 1
    return count


def other_running() -> int | None:
    """Runnable threads of other processes right now (None where /proc is missing)."""
    total = _procs_running()
    if total is None:
        return None
    return max(total - _own_running(), 0)


class ThreadPolicy:
    """The thread count for the next forward pass, and why."""

    def __init__(self, fixed: int | None = None):
        self.fixed = fixed
        self.max_threads = fixed or default_threads()
        self.current = self.max_threads
        self.reason = (
            f"{fixed} as configured" if fixed else f"all {self.max_threads} cores while idle"
        )
        self._checked = 0.0

    @property
    def adaptive(self) -> bool:
        return self.fixed is None and self.max_threads > 1

    def threads_now(self) -> int:
        """Recount at most once a second; between counts the last answer stands."""
        if not self.adaptive:
            return self.current
        now = time.monotonic()
        if now - self._checked < RECHECK_S:
            return self.current
        self._checked = now
        others = other_running()
        if others is None:
            return self.current
        self.current = max(1, self.max_threads - others)
        if self.current < self.max_threads:
            self.reason = (
                f"{self.current} of {self.max_threads} cores: {others} runnable thread(s) "
                "of other processes (llama.cpp's threads spin-wait, so a shared core "
                "slows every step)"
            )
        else:
            self.reason = f"all {self.max_threads} cores while idle (adapts to other load)"
        return self.current
