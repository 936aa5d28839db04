"""How many llama.cpp threads to run now: all cores when idle, fewer when others compete.

llama.cpp's worker threads busy-wait for each other at every step of a forward pass.
When another CPU-bound process holds one of the cores, a thread that lost its core
holds up all the others while they spin, and throughput collapses (bench/threads.py,
bench/results/threads/). So the runtime counts the runnable threads of *other*
processes (``procs_running`` in /proc/stat less this process's own running threads) at
most once a second, and runs on the cores they leave free, at least one. Off Linux, or
with ``n_threads`` given, the count is fixed.

Each llama.cpp step ends at an OpenMP barrier (this build of llama-cpp-python uses
libgomp), where a waiting thread spins GOMP_SPINCOUNT times, 300,000 by default, before
it sleeps. A thread whose core another process holds keeps the others spinning that
long at every barrier, and ``pause`` costs far more cycles on recent Xeons than on EPYCs,
so the same spin lasts longer there. SemQL sets GOMP_SPINCOUNT to SPIN_COUNT unless the
user set it or OMP_WAIT_POLICY (bench/openmp_wait.py measures the settings, idle and
beside a busy process; bench/results/threads/openmp-wait-*). libgomp reads it once, when
it loads, so it is set when ``semql`` is imported, before llama.cpp is.

"All cores" is the smaller of the CPUs this process may run on (its affinity mask) and
its cgroup's CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``,
nested limits included): a container limited to 2 CPUs on a 64-core node sees all 64 in
its affinity mask, and 64 spinning threads under a 2-CPU quota would be throttled at
every step.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

RECHECK_S = 1.0
# Spins at an OpenMP barrier before sleeping (libgomp's default 300000). 100 made an idle
# Intel Xeon run at 57% of its speed (waking at every barrier); 3000 kept the idle speed
# and, with the adaptive thread count, the loaded one (bench/openmp_wait.py,
# bench/results/threads/openmp-wait-20261204-232303.md; docs/models.md).
SPIN_COUNT = "3000"


def quiet_openmp_waits() -> None:
    """Shorten OpenMP's busy wait, unless the user chose a wait policy themselves."""
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _levels(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and each folder above it up to ``root`` (nested limits)."""
    here = root / relative.strip("/")
    levels = [here, *[p for p in here.parents if p == root or root in p.parents]]
    return [p for p in levels if p.is_dir()]


def cgroup_cpu_limit(
    proc_self: Path = Path("/proc/self"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> tuple[float, str] | None:
    """The CPUs this process's cgroup may use, and the file that says so (None: no quota).

    The tightest quota on the way from the process's cgroup up to the root counts. In a
    container the cgroup path of /proc/self/cgroup may be the host's while the
    container's own limit sits at the root of its cgroup mount, so the root is read too.
    """
    text = _read(proc_self / "cgroup") or ""
    best: tuple[float, str] | None = None
    for line in text.splitlines():
        _, controllers, relative = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: one unified hierarchy
            files = [(level / "cpu.max", None) for level in _levels(cgroup_root, relative)]
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own mount
            mount = cgroup_root / controllers
            if not mount.is_dir():
                mount = cgroup_root / "cpu"
            files = [
                (level / "cpu.cfs_quota_us", level / "cpu.cfs_period_us")
                for level in _levels(mount, relative) + _levels(mount, "")
            ]
        else:
            continue
        for quota_file, period_file in files:
            cpus = _quota_cpus(quota_file, period_file)
            if cpus is not None and (best is None or cpus < best[0]):
                best = (cpus, str(quota_file))
    return best


def _quota_cpus(quota_file: Path, period_file: Path | None) -> float | None:
    """CPUs of one quota file: v2 ``"200000 100000"`` / ``"max 100000"``, or v1's pair."""
    text = _read(quota_file)
    if not text:
        return None
    if period_file is None:
        quota, _, period = text.partition(" ")
    else:
        quota, period = text, _read(period_file) or ""
    try:
        q, p = int(quota), int(period or 100000)
    except ValueError:  # "max": no limit
        return None
    return q / p if q > 0 and p > 0 else None


def core_budget() -> tuple[int, str]:
    """The most threads worth running, and why: the affinity mask, bounded by the
    cgroup's CPU quota (rounded down: a thread over the quota is throttled)."""
    try:
        cores = max(len(os.sched_getaffinity(0)), 1)
        where = f"{cores} cores in this process's affinity mask"
    except AttributeError:  # not on Linux
        cores = max(os.cpu_count() or 1, 1)
        return cores, f"{cores} cores"
    limit = cgroup_cpu_limit()
    if limit is not None and math.floor(limit[0]) < cores:
        quota = max(math.floor(limit[0]), 1)
        return quota, f"{quota} of {cores} cores: cgroup CPU quota {limit[0]:g} ({limit[1]})"
    return cores, where


def default_threads() -> int:
    return core_budget()[0]


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
        budget, self.bound = core_budget()
        self.max_threads = fixed or budget
        self.current = self.max_threads
        self.reason = f"{fixed} as configured" if fixed else self._idle()
        self._checked = 0.0

    def _idle(self) -> str:
        return f"all {self.max_threads} cores while idle; {self.bound}"

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
            self.reason = self._idle() + ", adapts to other load"
        return self.current
