"""Model speeds for the cost model, measured once per model file and thread count.

The measurement takes about a second (a 256-token prefill, 16 decode steps, a few short
constrained calls) and is stored in the user's cache directory by the model's sha256, so
every later connection, and EXPLAIN without loading the model, reuses it.

A second of timing taken while the machine was busy can be far off (16 tok/s measured
where 300 was true), and every later estimate would inherit it; so real queries correct
it: after a query of at least MIN_CALLS model calls whose time differs from what the
profile predicts for the same tokens by more than CORRECT_ABOVE in either direction, the
stored speeds move halfway (in log scale) towards the observed ones. A profile that
cannot be true of an idle machine (a fixed cost per call above MAX_CALL_SECONDS, or a
batched prefill slower than one-token decoding) is measured again, stored or fresh.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace

from semql.planner.physical import DEFAULT_PROFILE, ModelProfile, work_seconds

from .model_files import atomic_write_text, cache_dir, model_sha256

PROFILE_FILE = "profiles.json"
MIN_CALLS = 16
CORRECT_ABOVE = 1.5
# A call's fixed cost (grammar setup, Python) is milliseconds for any model; seconds
# means the timing ran beside other work.
MAX_CALL_SECONDS = 0.25
_CALIBRATION = (
    "The film follows a retired detective who returns to the small coastal town where he "
    "grew up, after a series of strange disappearances. The performances are strong, the "
    "photography is beautiful, and the score is understated, but the second half drags "
    "and the ending leaves too many questions open. Critics praised the lead actor, while "
    "audiences were divided about the slow pace and the ambiguous final scene. "
) * 4


def _key(model_id: str, threads: int) -> str:
    return f"{model_id}:{threads}"


def _load_all() -> dict:
    try:
        return json.loads((cache_dir() / PROFILE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _stored(entry: dict | None) -> ModelProfile | None:
    """A stored profile as this SemQL names its fields, or None where there is none that
    fits (then it is measured again). Files written before ``reuses_prefix`` say
    ``reuse_chunk``: tokens per prefill chunk, 0 where prefixes were never reused."""
    if not entry:
        return None
    entry = dict(entry)
    if "reuse_chunk" in entry:
        entry["reuses_prefix"] = bool(entry.pop("reuse_chunk"))
    try:
        return ModelProfile(**entry)
    except TypeError:
        return None


def stored_profile(model_path: str, threads: int) -> ModelProfile | None:
    """The stored profile of a model file, without loading the model."""
    try:
        entry = _load_all().get(_key(model_sha256(model_path), threads))
    except OSError:
        return None
    return _stored(entry)


def measure(runtime) -> ModelProfile:
    """Time prefill, decode and per-call overhead of a loaded LlamaRuntime."""
    speeds = runtime.measure_speeds(_CALIBRATION)
    return ModelProfile(
        prefill_tokens_per_s=round(speeds["prefill_tokens_per_s"], 1),
        decode_tokens_per_s=round(speeds["decode_tokens_per_s"], 1),
        seconds_per_call=round(speeds["seconds_per_call"], 4),
        chars_per_token=round(speeds["chars_per_token"], 2),
        reuses_prefix=runtime.reuses_prefix,
        source=f"measured {time.strftime('%Y-%m-%d')}, {runtime.n_threads} threads",
    )


def implausible(profile: ModelProfile) -> str | None:
    """Why ``profile`` cannot describe an idle machine, or None."""
    if profile.seconds_per_call > MAX_CALL_SECONDS:
        return f"{profile.seconds_per_call:.3f}s fixed cost per call"
    if profile.prefill_tokens_per_s < profile.decode_tokens_per_s:
        return "batched prefill slower than one-token decoding"
    return None


def speed_key(runtime) -> str | None:
    """Where a runtime's speeds are stored: per model file and threads in-process, per
    endpoints and concurrency for servers (``Runtime.remote_speeds``); None for a
    runtime without speeds (a test double)."""
    if runtime.local:
        return _key(runtime.model_id, runtime.n_threads)
    if runtime.remote_speeds:
        return _key(runtime.model_id, runtime.concurrency)
    return None


def profile_for(runtime) -> ModelProfile:
    """The stored profile of a loaded runtime, measured and stored on first use, and
    measured again when the stored one is implausible (a fresh implausible measurement
    is repeated once and the faster kept; real runs correct what remains). Servers are
    not probed: their profile starts as the default and is learnt from real runs."""
    key = speed_key(runtime)
    if not runtime.local:
        known = _stored(_load_all().get(key)) if key is not None else None
        return known or DEFAULT_PROFILE
    known = _stored(_load_all().get(key))
    if known is not None and implausible(known) is None:
        return known
    profile = measure(runtime)
    if implausible(profile) is not None:
        again = measure(runtime)
        profile = max(profile, again, key=lambda p: p.prefill_tokens_per_s)
    known = _load_all()  # another process may have written meanwhile
    known[key] = asdict(profile)
    atomic_write_text(cache_dir() / PROFILE_FILE, json.dumps(known, indent=1))
    return profile


def _rounded(value: float) -> float:
    """Four significant digits. Every correction scales the three speeds alike, so their
    split (what a token costs against a call) stays as measured; rounding a call's cost of
    about a millisecond to fixed decimals instead ratcheted it against the token rates."""
    return float(f"{value:.4g}")


def corrected(
    profile: ModelProfile, seconds: float, fresh_tokens: int, generated: int, calls: int
) -> ModelProfile | None:
    """The profile moved towards an observed run, or None if the run agrees with it (or
    is too small to tell)."""
    if calls < MIN_CALLS or seconds <= 0:
        return None
    ratio = seconds / max(work_seconds(profile, fresh_tokens, generated, calls), 1e-9)
    if 1 / CORRECT_ABOVE <= ratio <= CORRECT_ABOVE:
        return None
    step = ratio**0.5  # halfway in log scale: one odd run cannot swing it all the way
    return replace(
        profile,
        prefill_tokens_per_s=_rounded(profile.prefill_tokens_per_s / step),
        decode_tokens_per_s=_rounded(profile.decode_tokens_per_s / step),
        seconds_per_call=_rounded(profile.seconds_per_call * step),
        source=f"corrected {time.strftime('%Y-%m-%d')} from a run of {calls} calls",
    )


def learn_from_run(runtime, profile: ModelProfile, stats) -> ModelProfile:
    """Correct and store the runtime's profile from a finished query's LM figures (a
    server's: wall time with its requests in flight, so what a query there will take)."""
    key = speed_key(runtime)
    if key is None:
        return profile
    ops = [op for op in stats.operators if op.lm_calls]
    calls = sum(op.lm_calls for op in ops)
    fresh = sum(op.prompt_tokens - op.cached_prompt_tokens for op in ops)
    better = corrected(
        profile,
        sum(op.seconds for op in ops),
        fresh,
        sum(op.generated_tokens for op in ops),
        calls,
    )
    if better is None:
        return profile
    known = _load_all()
    known[key] = asdict(better)
    atomic_write_text(cache_dir() / PROFILE_FILE, json.dumps(known, indent=1))
    return better
