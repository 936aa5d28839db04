"""The price of LM work on this machine: one model file's measured speeds.

The cost model prices a plan's stages with a :class:`ModelProfile`; the runtime measures
it and corrects it after real queries (executors/runtimes/model_profile.py). Both sides
read it, so it belongs to the physical plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelProfile:
    """Speeds of one model file on this machine."""

    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    seconds_per_call: float  # fixed cost of a generation (grammar state, sampling setup)
    chars_per_token: float
    reuses_prefix: bool  # whether the KV cache serves a prompt prefix shared with the last
    source: str  # how the figures were obtained

    def describe(self) -> str:
        return (
            f"prefill {self.prefill_tokens_per_s:.0f} tok/s, decode "
            f"{self.decode_tokens_per_s:.0f} tok/s, {self.seconds_per_call * 1000:.0f} ms/call "
            f"({self.source})"
        )


# Rough figures of a 270M model on two CPU cores; used until the model has been measured.
DEFAULT_PROFILE = ModelProfile(600.0, 60.0, 0.02, 4.0, True, "defaults: model not measured yet")


def work_seconds(
    profile: ModelProfile, fresh_tokens: float, generated: float, calls: float
) -> float:
    """The profile's price of this much LM work: prompt tokens not served from the KV
    cache, generated tokens, and the fixed cost of each call."""
    return (
        calls * profile.seconds_per_call
        + fresh_tokens / profile.prefill_tokens_per_s
        + generated / profile.decode_tokens_per_s
    )
