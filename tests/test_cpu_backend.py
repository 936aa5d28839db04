"""The CPU kernel path: SemQL never dies with SIGILL, and says which path it uses and why.

The decision logic is tested with child processes that really die (a SIGILL sent to
themselves), so a probe's verdict is exercised as on an AMX machine whose worker threads
crash; the real-model test runs an LM query in a child process on this machine's own
llama.cpp build and asserts that it exits normally (SIGILL would be return code -4), so
CI on such a CPU catches a regression.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from semql.executors.runtimes import cpu_backend


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_probe_that_dies_with_sigill_turns_extra_buffers_off():
    verdict = cpu_backend.run_probe(
        _child("import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    )
    assert verdict.extra_bufts is False
    assert "SIGILL" in verdict.reason and "-4" in verdict.reason


def test_probe_that_succeeds_keeps_extra_buffers():
    verdict = cpu_backend.run_probe(_child("pass"))
    assert verdict.extra_bufts is True


def test_probe_that_fails_or_hangs_turns_them_off():
    failed = cpu_backend.run_probe(_child("import sys; sys.exit('no kernels here')"))
    assert failed.extra_bufts is False and "no kernels here" in failed.reason
    hung = cpu_backend.run_probe(_child("import time; time.sleep(30)"), timeout=1)
    assert hung.extra_bufts is False and "did not finish" in hung.reason


def test_verdict_is_stored_per_build_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    marker = tmp_path / "probe-ran"
    monkeypatch.setattr(
        cpu_backend,
        "probe_command",
        lambda path: _child(
            f"open({str(marker)!r}, 'a').write('x'); "
            "import os, signal; os.kill(os.getpid(), signal.SIGILL)"
        ),
    )
    first = cpu_backend.decide("unused.gguf")
    second = cpu_backend.decide("unused.gguf")
    assert first == second and first.extra_bufts is False
    assert marker.read_text() == "x"  # the probe ran once
    stored = json.loads((tmp_path / cpu_backend.VERDICT_FILE).read_text())
    assert stored[cpu_backend.machine_key()]["extra_bufts"] is False


def test_setting_forces_either_way(monkeypatch):
    monkeypatch.setenv("SEMQL_EXTRA_BUFTS", "off")
    assert cpu_backend.decide("unused.gguf").extra_bufts is False
    monkeypatch.setenv("SEMQL_EXTRA_BUFTS", "on")
    assert cpu_backend.decide("unused.gguf").extra_bufts is True
    assert cpu_backend.decide("unused.gguf", extra_bufts=False).extra_bufts is False


def test_model_params_sets_the_flag_for_one_load_only():
    import llama_cpp.llama_cpp as raw

    assert raw.llama_model_default_params().use_extra_bufts is True  # llama.cpp's default
    with cpu_backend.model_params(False):
        assert raw.llama_model_default_params().use_extra_bufts is False
    assert raw.llama_model_default_params().use_extra_bufts is True


@pytest.mark.model
def test_lm_query_in_a_child_process_exits_normally(tmp_path):
    """On an AMX CPU whose worker threads crash, this is where SIGILL (-4) would show."""
    from semql.executors.runtimes.model_files import default_model_path

    model = default_model_path()  # assembled in the usual cache, not again in tmp_path
    env = {**os.environ, "SEMQL_CACHE_DIR": str(tmp_path)}  # a fresh probe too
    env.pop("SEMQL_EXTRA_BUFTS", None)
    sql = (
        "SELECT reviewId, {{LLMMap('Is this movie review positive?', reviewText)}} AS pos "
        "FROM Reviews WHERE id = 'taken_3' LIMIT 3"
    )
    done = subprocess.run(
        [sys.executable, "-m", "semql.cli", "--model", model, "--sample", "--no-cache"]
        + ["--format", "csv", "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    died = f" (killed by {signal.Signals(-done.returncode).name})" if done.returncode < 0 else ""
    assert done.returncode == 0, f"exit {done.returncode}{died}: {done.stderr[-2000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "reviewId,pos" and len(lines) == 4
    info = subprocess.run(
        [sys.executable, "-m", "semql.cli", "--model", model, "info"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert info.returncode == 0, info.stderr
    assert "extra buffer types" in info.stdout and "threads:" in info.stdout


def test_thread_policy_leaves_cores_busy_elsewhere_alone():
    from semql.executors.runtimes.thread_policy import ThreadPolicy

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
