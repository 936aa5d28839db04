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
(SIGILL is return code -4, SIGSEGV -11), times out or fails, SemQL loads without them.

Only a clear answer is stored: a clean exit, or death by a signal that a crashing kernel
raises. It is stored per llama.cpp build, CPU and model file (which tensors reach the
extra kernels depends on the model's tensor types), so the probe runs once per model. A
probe that timed out, was killed from outside (the OOM killer's SIGKILL) or failed
otherwise says nothing lasting about the kernels: this process loads without them and
the next one probes again. ``SEMQL_EXTRA_BUFTS=on|off|auto`` (or ``connect(extra_bufts=
True|False|None)``) forces either way; any other value is an error naming the accepted
ones. ``semql info`` shows the path in use and why.
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

from semql.errors import ModelError

from .model_files import atomic_write_text, cache_dir, model_sha256

VERDICT_FILE = "cpu_backend.json"
PROBE_TIMEOUT_S = 180.0
# Deaths that a crashing kernel causes: a verdict worth keeping. Any other signal came
# from outside the probe (SIGKILL from the OOM killer, SIGTERM at shutdown).
CRASH_SIGNALS = {signal.SIGILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT}
SETTINGS = {
    "on": True, "true": True, "1": True, "yes": True,
    "off": False, "false": False, "0": False, "no": False,
    "auto": None, "": None,
}  # fmt: skip
_PATCH_LOCK = threading.Lock()
_THIS_PROCESS: dict[str, Verdict] = {}  # verdicts not stored: asked again next process


@dataclass(frozen=True)
class Verdict:
    """Whether to load with the extra buffer types, and why; ``lasting`` when the probe
    gave a clear answer worth storing."""

    extra_bufts: bool
    reason: str
    lasting: bool = True


def _cpuinfo(field: str) -> str:
    """A field of the first CPU in /proc/cpuinfo ("" off Linux or when absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def cpu_model() -> str:
    """The CPU's model name ("unknown" off Linux): results files say which CPU they ran on."""
    return _cpuinfo("model name") or "unknown"


def cpu_flags() -> set[str]:
    """The flags /proc/cpuinfo advertises for the first CPU (empty off Linux)."""
    return set(_cpuinfo("flags").split())


def simd_flags() -> list[str]:
    """The flags of the SIMD paths llama.cpp's CPU kernels choose between (AVX2, AVX-512,
    AMX), sorted: what `semql info` and the benches name a CPU by."""
    return sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512f", "avx2")))


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


def parse_setting(value: object, source: str = "extra_bufts") -> bool | None:
    """True, False or None (auto) from a bool, None or one of SETTINGS' words; anything
    else is a ModelError naming ``source`` and the accepted values."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in SETTINGS:
        return SETTINGS[value.strip().lower()]
    raise ModelError(
        f"{source}={value!r} is not a setting for llama.cpp's extra buffer types; expected "
        "on / off / auto (also true / false, 1 / 0, yes / no; True, False or None in Python)"
    )


def forced_setting(extra_bufts: object = None) -> bool | None:
    """The user's choice: the argument, else $SEMQL_EXTRA_BUFTS, else None (auto)."""
    if extra_bufts is not None:
        return parse_setting(extra_bufts, "extra_bufts")
    return parse_setting(os.environ.get("SEMQL_EXTRA_BUFTS", "auto"), "SEMQL_EXTRA_BUFTS")


def probe_command(model_path: str) -> list[str]:
    return [sys.executable, "-m", "semql.executors.runtimes.cpu_backend", model_path]


def run_probe(command: list[str], timeout: float | None = None) -> Verdict:
    """Run ``command`` (a child that loads and decodes with the extra buffer types)
    for at most ``timeout`` seconds (PROBE_TIMEOUT_S)."""
    timeout = timeout or PROBE_TIMEOUT_S
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return Verdict(False, f"probe did not finish in {timeout:.0f} s", lasting=False)
    except OSError as err:
        return Verdict(False, f"probe could not start: {err}", lasting=False)
    took = time.perf_counter() - started
    if done.returncode == 0:
        return Verdict(True, f"probe decoded with them ({took:.1f} s)")
    if done.returncode < 0:
        sig = signal.Signals(-done.returncode)
        reason = f"probe died with {sig.name} (return code {done.returncode})"
        return Verdict(False, reason, lasting=sig in CRASH_SIGNALS)
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    reason = f"probe failed with exit code {done.returncode}: {tail[0][:200]}"
    return Verdict(False, reason, lasting=False)


def verdict_key(model_path: str) -> str:
    """The llama.cpp build and CPU (machine_key) and the model file's sha256."""
    return f"{machine_key()}:{model_sha256(model_path)[:16]}"


def stored_verdict(model_path: str) -> Verdict | None:
    """The verdict already known for this build, CPU and model, without probing."""
    return _known(verdict_key(model_path))


def _known(key: str) -> Verdict | None:
    if key in _THIS_PROCESS:
        return _THIS_PROCESS[key]
    try:
        known = json.loads((cache_dir() / VERDICT_FILE).read_text())
    except (OSError, ValueError):
        return None
    entry = known.get(key)
    return Verdict(**entry) if isinstance(entry, dict) else None


def decide(model_path: str, extra_bufts: object = None) -> Verdict:
    """Forced setting, else the known verdict for this build, CPU and model, else a probe
    (stored when its answer is lasting, else kept for this process only)."""
    forced = forced_setting(extra_bufts)
    if forced is not None:
        return Verdict(forced, "forced by setting (extra_bufts / SEMQL_EXTRA_BUFTS)")
    key = verdict_key(model_path)
    known = _known(key)
    if known is not None:
        return known
    verdict = run_probe(probe_command(model_path))
    if not verdict.lasting:
        _THIS_PROCESS[key] = Verdict(False, verdict.reason + "; probed again next run", False)
        return _THIS_PROCESS[key]
    path = cache_dir() / VERDICT_FILE
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    stored[key] = asdict(verdict)
    atomic_write_text(path, json.dumps(stored, indent=1))
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


# Rows per batched decode (bench/batch_recipe.py, Intel Xeon): 8 keeps most of 16's speed
# on many rows (71% of llama.cpp's prefill limit against 78%), costs half its latency for
# a row alone, and fills the batches of 8 rows an early exit asks for; 32 was slower.
BATCH_ROWS = 8


def default_batch_rows(flags: set[str] | None = None) -> tuple[int, str]:
    """Rows per decode where the user names none, and why: ``BATCH_ROWS`` on CPUs with
    AMX, one row at a time elsewhere.

    The batched recipe pays only where a decode of ``BATCH_ROWS`` x 16 tokens costs far less
    a token than a row alone, enough to cover its padding and one output per stream.
    bench/lm_limits.py and bench/decode_shapes.py, 2 threads, idle, on three CPUs:

    * Intel Xeon, AVX-512 and AMX (extra buffer types off): bool map 61% -> 66% of
      llama.cpp's prefill limit batched, int 40% -> 47% (results/throughput/
      limits-20261205-003419, before DECODING 3 made a row alone faster);
    * AMD EPYC, AVX2 (extra buffer types on; off changed nothing): bool 84% -> 65%, options
      81% -> 66%, int 64% -> 48%, SemBench movie 339 s -> 502 s (limits-20261206-180918);
    * AMD EPYC, AVX-512 without AMX (extra buffer types on): bool 74% -> 61%, options
      84% -> 64%, int 66% -> 47%, SemBench movie 279 s -> 357 s (limits-20261207-074253).

    AVX-512 alone is therefore not what makes batching pay; AMX marks the one CPU where it
    was measured faster, and that CPU needs measuring again at DECODING 3.
    """
    flags = cpu_flags() if flags is None else flags
    if "amx_tile" in flags:
        return BATCH_ROWS, f"{BATCH_ROWS} rows per decode (measured faster on a CPU with AMX)"
    return 1, "one row at a time (batched decodes measured slower on CPUs without AMX)"


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
