"""llama-cpp-python's real OpenAI-compatible server on 127.0.0.1, for the HTTP runtime's
tests: started the way SemQL loads a model on this CPU (executors/runtimes/cpu_backend),
so a machine whose AMX kernels die with SIGILL runs the server too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

LAUNCH = (
    "import runpy, sys; from semql.executors.runtimes import cpu_backend; "
    "cpu_backend.model_params(cpu_backend.decide(sys.argv[2]).extra_bufts).__enter__(); "
    "sys.argv[0] = 'llama_cpp.server'; "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_path: str, threads: int | None = None) -> tuple[subprocess.Popen, str]:
    """A running server and its URL; raises RuntimeError if it does not answer in 120 s."""
    port = free_port()
    args = [sys.executable, "-c", LAUNCH, "--model", model_path, "--host", "127.0.0.1"]
    args += ["--port", str(port), "--n_ctx", "2048", "--seed", "0"]
    if threads is not None:
        args += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # bounded wait for the server to answer
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited during start-up") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
