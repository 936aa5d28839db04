"""Whether llama.cpp's extra CPU buffer types are safe on this machine.

llama.cpp repacks weights into "extra buffer types" for faster CPU kernels (AMX tiles on
recent Xeons, interleaved layouts for AVX2/AVX-512). On CPUs that advertise AMX, a build
of llama-cpp-python with ``-march=native`` compiles the AMX kernels in, and in containers
and VMs its worker threads can die with SIGILL (llama.cpp asks the kernel for AMX tile
permission on one thread only): every LM query would kill the Python process with no
error. Loading with ``use_extra_bufts = False`` avoids those kernels.

So the first load on a machine runs a probe in a child process: it loads the model with
the extra buffer types and runs a batched and a single-token decode on two threads. If
the child exits normally they are kept (they are faster where they apply); if it dies
(SIGILL shows as return code -4), times out or fails, SemQL loads without them. The
verdict is stored per llama.cpp build and CPU in the cache directory, so the probe runs
once. ``SEMQL_EXTRA_BUFTS=on|off`` (or ``connect(extra_bufts=True|False)``) forces
either way; ``semql info`` shows the path in use and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .model_files import atomic_write_text, cache_dir

VERDICT_FILE = "cpu_backend.json"
PROBE_TIMEOUT_S = 180.0
_PATCH_LOCK = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """Whether to load with the extra buffer types, and why."""

    extra_bufts: bool
    reason: str


def _cpuinfo(field: str) -> str:
    """A field of the first CPU in /proc/cpuinfo ("" off Linux or when absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    """The flags /proc/cpuinfo advertises for the first CPU (empty off Linux)."""
    return set(_cpuinfo("flags").split())


def machine_key() -> str:
    """The llama.cpp build (version, library file) and the CPU (model, flags)."""
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    files = sorted(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in lib.glob("*.so*")
        if p.is_file()
    )
    text = "|".join(
        [llama_cpp.__version__, *files, _cpuinfo("model name"), " ".join(sorted(cpu_flags()))]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def forced_setting(extra_bufts: bool | None = None) -> bool | None:
    """The user's choice: the argument, else $SEMQL_EXTRA_BUFTS (on/off/auto)."""
    if extra_bufts is not None:
        return bool(extra_bufts)
    value = os.environ.get("SEMQL_EXTRA_BUFTS", "auto").strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    return None


def probe_command(model_path: str) -> list[str]:
    return [sys.executable, "-m", "semql.executors.runtimes.cpu_backend", model_path]


def run_probe(command: list[str], timeout: float = PROBE_TIMEOUT_S) -> Verdict:
    """Run ``command`` (a child that loads and decodes with the extra buffer types)."""
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return Verdict(False, f"probe did not finish in {timeout:.0f} s")
    except OSError as err:
        return Verdict(False, f"probe could not start: {err}")
    took = time.perf_counter() - started
    if done.returncode == 0:
        return Verdict(True, f"probe decoded with them ({took:.1f} s)")
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return Verdict(False, f"probe died with {name} (return code {done.returncode})")
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return Verdict(False, f"probe failed with exit code {done.returncode}: {tail[0][:200]}")


def decide(model_path: str, extra_bufts: bool | None = None) -> Verdict:
    """Forced setting, else the stored verdict for this build and CPU, else a probe."""
    forced = forced_setting(extra_bufts)
    if forced is not None:
        return Verdict(forced, "forced by setting (extra_bufts / SEMQL_EXTRA_BUFTS)")
    key = machine_key()
    path = cache_dir() / VERDICT_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return Verdict(**known[key])
    verdict = run_probe(probe_command(model_path))
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[key] = asdict(verdict)
    atomic_write_text(path, json.dumps(known, indent=1))
    return verdict


@contextlib.contextmanager
def model_params(extra_bufts: bool) -> Iterator[None]:
    """Make ``llama_cpp.Llama`` load with or without the extra buffer types.

    ``Llama`` takes no argument for it, so its default-params function is wrapped for
    the duration of one load (under a lock: loads in other threads wait).
    """
    import llama_cpp.llama_cpp as raw

    with _PATCH_LOCK:
        original = raw.llama_model_default_params

        def params():
            p = original()
            if hasattr(p, "use_extra_bufts"):
                p.use_extra_bufts = extra_bufts
            return p

        raw.llama_model_default_params = params
        try:
            yield
        finally:
            raw.llama_model_default_params = original


def _probe_main(model_path: str) -> int:
    """The child: load with the extra buffer types, decode a batch and one token."""
    import llama_cpp

    with model_params(True):
        llm = llama_cpp.Llama(
            model_path=model_path, n_ctx=256, n_threads=2, n_threads_batch=2, verbose=False
        )
    tokens = llm.tokenize(b"The probe checks that the CPU kernels run. " * 4)[:48]
    llm.eval(tokens)
    llm.eval(tokens[:1])
    llm.close()
    return 0


if __name__ == "__main__":
    sys.exit(_probe_main(sys.argv[1]))
