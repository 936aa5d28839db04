"""The in-process model's speeds, measured once per machine for the cost model
(executors/runtimes/model_profile.py stores them): prefill and decode tokens/s and the
fixed cost of one constrained call, with the runtime's own decoding code."""

from __future__ import annotations

import time

from semql.grammar.types import BoolType
from semql.planner.physical.prompt_format import PromptBuilder


def measure(rt, text: str) -> dict[str, float]:
    """256 prompt tokens from an empty KV cache, 16 single-token decode steps, then short
    bool calls whose prompt is cached."""
    tokens = rt.tokenize(text)
    with rt._lock:
        rt._clear_cache()
        started = time.perf_counter()
        rt._prefill(tokens[:256])
        prefill = min(len(tokens), 256) / (time.perf_counter() - started)
        started = time.perf_counter()
        for token in tokens[256:272]:
            rt._decode([token], logits=True)
        decode = len(tokens[256:272]) / (time.perf_counter() - started)
    prompt = PromptBuilder("completion").build("Is this positive?", BoolType(), ["text"], ["good"])
    rt.generate(prompt, BoolType())  # grammar compiled, prompt in the KV cache
    runs = 4
    started = time.perf_counter()
    for _ in range(runs):
        gen = rt.generate(prompt, BoolType())
    per_call = (time.perf_counter() - started) / runs
    fresh = gen.prompt_tokens - gen.cached_tokens
    overhead = per_call - fresh / prefill - gen.generated_tokens / decode
    return {
        "prefill_tokens_per_s": prefill,
        "decode_tokens_per_s": decode,
        "seconds_per_call": max(overhead, 0.001),
        "chars_per_token": len(text) / max(len(tokens), 1),
    }
