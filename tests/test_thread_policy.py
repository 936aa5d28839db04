"""Thread counts: the cores other processes leave free, within the cgroup's CPU quota, and
OpenMP waits that do not spin for long (executors/runtimes/thread_policy.py).

The quota is read from fake cgroup trees laid out as the kernel lays them out (v2's
unified ``cpu.max``, v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), nested limits
and a container's own root limit included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from semql.executors.runtimes import thread_policy
from semql.executors.runtimes.thread_policy import ThreadPolicy, cgroup_cpu_limit


def _tree(tmp_path, cgroup_line: str, files: dict[str, str]):
    proc = tmp_path / "proc"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup_line + "\n")
    root = tmp_path / "cgroup"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return proc, root


def test_cgroup_v2_quota_nested_limits_take_the_tightest(tmp_path):
    proc, root = _tree(
        tmp_path,
        "0::/kubepods/pod1/c1",
        {
            "cpu.max": "max 100000",
            "kubepods/cpu.max": "800000 100000",
            "kubepods/pod1/cpu.max": "250000 100000",
            "kubepods/pod1/c1/cpu.max": "max 100000",
        },
    )
    cpus, where = cgroup_cpu_limit(proc, root)
    assert cpus == 2.5 and where.endswith("kubepods/pod1/cpu.max")


def test_cgroup_v2_container_root_limit_and_no_limit(tmp_path):
    # a container sees the host's path in /proc/self/cgroup, its own limit at the root
    proc, root = _tree(tmp_path, "0::/system.slice/docker-abc.scope", {"cpu.max": "200000 100000"})
    assert cgroup_cpu_limit(proc, root)[0] == 2.0
    proc2, root2 = _tree(tmp_path / "free", "0::/user.slice", {"user.slice/cpu.max": "max 100000"})
    assert cgroup_cpu_limit(proc2, root2) is None


def test_cgroup_v1_cfs_quota(tmp_path):
    proc, root = _tree(
        tmp_path,
        "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
            "cpu,cpuacct/cpu.cfs_quota_us": "-1",
            "cpu,cpuacct/cpu.cfs_period_us": "100000",
        },
    )
    cpus, where = cgroup_cpu_limit(proc, root)
    assert cpus == 1.5 and "cpu.cfs_quota_us" in where


def test_core_budget_is_bounded_by_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(thread_policy, "cgroup_cpu_limit", lambda: (2.5, "/sys/fs/cgroup/cpu.max"))
    threads, why = thread_policy.core_budget()
    assert threads == 2 and "quota 2.5" in why and "of 64 cores" in why
    policy = ThreadPolicy()
    assert policy.max_threads == 2 and "quota" in policy.bound
    monkeypatch.setattr(thread_policy, "cgroup_cpu_limit", lambda: (0.5, "cpu.max"))
    assert thread_policy.core_budget()[0] == 1  # never below one thread
    monkeypatch.setattr(thread_policy, "cgroup_cpu_limit", lambda: None)
    assert thread_policy.core_budget() == (64, "64 cores in this process's affinity mask")


def test_openmp_spin_is_shortened_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    thread_policy.quiet_openmp_waits()
    assert os.environ["GOMP_SPINCOUNT"] == thread_policy.SPIN_COUNT
    monkeypatch.setenv("GOMP_SPINCOUNT", "5000")
    thread_policy.quiet_openmp_waits()
    assert os.environ["GOMP_SPINCOUNT"] == "5000"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    thread_policy.quiet_openmp_waits()
    assert "GOMP_SPINCOUNT" not in os.environ


def test_importing_semql_sets_the_wait_before_llama_cpp_loads():
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = (
        "import sys, os, semql; "
        "assert 'llama_cpp' not in sys.modules, 'llama.cpp loaded by import semql'; "
        "print(os.environ['GOMP_SPINCOUNT'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == thread_policy.SPIN_COUNT


def test_thread_policy_leaves_cores_busy_elsewhere_alone():
    fixed = ThreadPolicy(3)
    assert fixed.threads_now() == 3 and "configured" in fixed.reason
    policy = ThreadPolicy()
    if policy.max_threads < 2:
        pytest.skip("one core: nothing to adapt")
    before = policy.threads_now()  # other work on this machine may already hold cores
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(policy.max_threads)
    ]
    try:
        time.sleep(0.5)
        policy._checked = 0.0  # recount now rather than a second after ``before``
        assert policy.threads_now() == 1
        assert "other processes" in policy.reason
    finally:
        for p in busy:
            p.kill()
            p.wait()
    counts = []
    for _ in range(20):  # the killed loops leave the run queue within moments
        policy._checked = 0.0  # recount now rather than in a second
        counts.append(policy.threads_now())
        if counts[-1] >= before:
            break
        time.sleep(0.1)
    assert counts[-1] >= before, counts
