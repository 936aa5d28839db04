"""llama-cpp-python's real OpenAI-compatible server on 127.0.0.1, for the HTTP runtime's
tests, started the way a user starts one: ``semql serve`` (semql/serve.py), which loads
with the CPU kernel verdict SemQL uses in process, so a machine whose AMX or repack
kernels crash runs the server too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    model_path: str,
    threads: int | None = None,
    *,
    extra_bufts: str | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen, str]:
    """A running server and its URL; raises RuntimeError if it does not answer in 120 s.
    ``log``: the server's stderr goes there, with llama.cpp's load log (--verbose)."""
    port = free_port()
    args = [sys.executable, "-m", "semql.cli", "serve", model_path, "--host", "127.0.0.1"]
    args += ["--port", str(port), "--n-ctx", "2048"]
    if threads is not None:
        args += ["--threads", str(threads)]
    if extra_bufts is not None:
        args += ["--extra-bufts", extra_bufts]
    if log is not None:
        args.append("--verbose")
    stderr = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        if log is not None:
            stderr.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # bounded wait for the server to answer
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"semql serve exited during start-up (code {proc.returncode})"
                ) from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("semql serve did not start within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
