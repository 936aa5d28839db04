"""Every load of a model, in process and in the servers SemQL starts, uses the kernels the
verdict chose (executors/runtimes/cpu_backend.py).

On a CPU whose AMX or repack kernels crash, a load that slips past ``model_params`` dies
on its first decode; on a CPU whose kernels work, the same slip changes nothing visible.
So these tests look at the load itself: what llama.cpp was asked for (in process), and
which model buffers it reports in its own load log (a server process).
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from llama_server import start_server, stop_server

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.model_files import default_model_path

EXTRA_BUFFERS = re.compile(r"(AMX|CPU_REPACK) model buffer size")


@pytest.fixture
def loads(monkeypatch):
    """The ``use_extra_bufts`` of every llama.cpp model load in this process."""
    import llama_cpp.llama_cpp as raw

    seen: list[bool] = []
    original = raw.llama_model_load_from_file

    def spy(path, params):
        seen.append(bool(params.use_extra_bufts))
        return original(path, params)

    monkeypatch.setattr(raw, "llama_model_load_from_file", spy)
    return seen


@pytest.mark.model
@pytest.mark.parametrize("setting", [False, True])
def test_in_process_runtime_loads_with_the_verdict(loads, setting):
    from semql.executors.runtimes.llama_runtime import LlamaRuntime

    runtime = LlamaRuntime(default_model_path(), n_ctx=256, n_threads=1, extra_bufts=setting)
    runtime.close()
    assert runtime.backend.extra_bufts is setting
    assert loads == [setting]


@pytest.mark.model
def test_gguf_embedder_honours_the_connection_setting(loads, tmp_path, monkeypatch):
    """A stored verdict says on; the connection says off; the embedder loads off."""
    from semql.executors.proxy.embeddings import make_embedders

    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMQL_EXTRA_BUFTS", raising=False)
    model = default_model_path()
    monkeypatch.setattr(cpu_backend, "probe_command", lambda path: ["true"])
    assert cpu_backend.decide(model).extra_bufts is True  # stored: on
    make_embedders("lm", model, extra_bufts=False)
    make_embedders(f"gguf:{model}", None, extra_bufts=False)
    make_embedders("lm", model)  # no setting: the stored verdict
    assert loads == [False, False, True]


def _buffers(log_text: str) -> set[str]:
    return {m.group(1) for m in EXTRA_BUFFERS.finditer(log_text)}


@pytest.mark.model
def test_semql_serve_loads_with_the_kernels_asked(tmp_path):
    """The server's own load log names no AMX or repack buffer when they are off.

    First the same model is loaded with them forced on, to show this CPU has such a
    path at all (the server is stopped before any request, so a CPU whose kernels crash
    on a decode survives it); where it has none, the test says so instead of passing.
    """
    model = default_model_path()
    on_log = tmp_path / "on.log"
    proc, _ = start_server(model, threads=1, extra_bufts="on", log=on_log)
    stop_server(proc)
    with_them = _buffers(on_log.read_text(errors="replace"))
    if not with_them:
        pytest.skip("this CPU has neither AMX nor repack kernels for this model's tensors")
    off_log = tmp_path / "off.log"
    proc, url = start_server(model, threads=1, extra_bufts="off", log=off_log)
    try:
        body = json.dumps({"prompt": "The capital of France is", "max_tokens": 4})
        request = urllib.request.Request(
            url + "/v1/completions",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            text = json.loads(reply.read())["choices"][0]["text"]
    finally:
        stop_server(proc)
    log = off_log.read_text(errors="replace")
    assert "extra buffer types (AMX / repacked weights): off" in log
    assert _buffers(log) == set(), f"loaded with {_buffers(log)} although forced off"
    assert isinstance(text, str)


def test_version_shows_the_stored_kernel_path(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "SEMQL_CACHE_DIR": str(tmp_path), "SEMQL_EXTRA_BUFTS": "off"}
    done = subprocess.run(
        [sys.executable, "-m", "semql.cli", "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "CPU kernels: extra buffer types off (SEMQL_EXTRA_BUFTS)" in done.stdout
