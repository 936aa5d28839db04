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


def _model_file(tmp_path, name: str, content: bytes = b"GGUF model bytes") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _counting_probe(monkeypatch, marker, code: str) -> None:
    """probe_command runs ``code`` in a child that first appends to ``marker``."""
    monkeypatch.setattr(
        cpu_backend,
        "probe_command",
        lambda path: _child(f"open({str(marker)!r}, 'a').write('x'); {code}"),
    )


def test_verdict_is_stored_per_build_cpu_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    marker = tmp_path / "probe-ran"
    _counting_probe(monkeypatch, marker, "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    model = _model_file(tmp_path, "a.gguf")
    first = cpu_backend.decide(model)
    second = cpu_backend.decide(model)
    assert first == second and first.extra_bufts is False
    assert marker.read_text() == "x"  # the probe ran once
    stored = json.loads((tmp_path / cpu_backend.VERDICT_FILE).read_text())
    assert stored[cpu_backend.verdict_key(model)]["extra_bufts"] is False
    other = _model_file(tmp_path, "b.gguf", b"GGUF other tensors")  # another model: probed
    assert cpu_backend.decide(other).extra_bufts is False
    assert marker.read_text() == "xx"
    assert len(json.loads((tmp_path / cpu_backend.VERDICT_FILE).read_text())) == 2


@pytest.mark.parametrize(
    "code",
    [
        "import time; time.sleep(10)",  # timed out (a busy machine)
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",  # the OOM killer
        "import sys; sys.exit('out of memory')",
    ],
)
def test_inconclusive_probe_is_not_stored_and_runs_again_next_process(tmp_path, monkeypatch, code):
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    monkeypatch.setattr(cpu_backend, "PROBE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(cpu_backend, "_THIS_PROCESS", {})
    marker = tmp_path / "probe-ran"
    _counting_probe(monkeypatch, marker, code)
    model = _model_file(tmp_path, "a.gguf")
    verdict = cpu_backend.decide(model)
    assert verdict.extra_bufts is False and not verdict.lasting
    assert "probed again" in verdict.reason
    assert not (tmp_path / cpu_backend.VERDICT_FILE).exists()
    cpu_backend.decide(model)  # the same process does not wait for another probe
    assert marker.read_text() == "x"
    monkeypatch.setattr(cpu_backend, "_THIS_PROCESS", {})  # as a new process
    cpu_backend.decide(model)
    assert marker.read_text() == "xx"


def test_setting_forces_either_way(monkeypatch):
    monkeypatch.setenv("SEMQL_EXTRA_BUFTS", "off")
    assert cpu_backend.decide("unused.gguf").extra_bufts is False
    monkeypatch.setenv("SEMQL_EXTRA_BUFTS", "On")
    assert cpu_backend.decide("unused.gguf").extra_bufts is True
    assert cpu_backend.decide("unused.gguf", extra_bufts=False).extra_bufts is False
    assert cpu_backend.decide("unused.gguf", extra_bufts="off").extra_bufts is False


@pytest.mark.parametrize("value", ["offf", "2", "maybe"])
def test_a_setting_that_is_no_setting_is_an_error_naming_it(monkeypatch, value):
    from semql import ModelError

    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    with pytest.raises(ModelError, match=rf"extra_bufts='{value}'.*on / off / auto"):
        cpu_backend.decide("unused.gguf", extra_bufts=value)
    monkeypatch.setenv("SEMQL_EXTRA_BUFTS", value)
    with pytest.raises(ModelError, match=rf"SEMQL_EXTRA_BUFTS='{value}'.*on / off / auto"):
        cpu_backend.decide("unused.gguf")


def test_connect_rejects_a_bad_setting_at_once():
    import semql

    with pytest.raises(semql.ModelError, match="extra_bufts='offf'"):
        semql.connect(extra_bufts="offf")
    with pytest.raises(semql.ModelError, match="extra_bufts=3"):
        semql.connect(extra_bufts=3)


def test_unwritable_cache_directory_is_a_clear_error(tmp_path, monkeypatch):
    from semql import ModelError

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(blocked / "semql"))
    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    monkeypatch.setattr(cpu_backend, "probe_command", lambda path: _child("pass"))
    with pytest.raises(ModelError, match="cache directory .*not-a-folder.*SEMQL_CACHE_DIR"):
        cpu_backend.decide(_model_file(tmp_path, "a.gguf"))


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
        + ["--calibration", "content_free", "--format", "csv", "-c", sql],  # 3 calls, not 32
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
    assert "output layer:" in info.stdout
