"""Per-query caps on LM work: LM calls, prompt tokens and seconds.

Checked before every generation, so a query stops within one LM call of its cap; the
seconds also cap DuckDB's part (the connection interrupts a statement still running at
the deadline and raises the same error). The error reports the work done; the answers
already given stay in the result cache (the LM executor flushes them on the way out) and
the query's final statement never runs, so no table changes.
"""

from __future__ import annotations

import time

from semql.errors import LimitExceeded


class Budget:
    def __init__(
        self,
        max_lm_calls: int | None = None,
        max_prompt_tokens: int | None = None,
        max_seconds: float | None = None,
        cached: bool = True,
    ):
        self.max_lm_calls = max_lm_calls
        self.max_prompt_tokens = max_prompt_tokens
        self.max_seconds = max_seconds
        self.cached = cached
        self.started = time.perf_counter()
        self.lm_calls = 0
        self.prompt_tokens = 0

    def spend(self, prompt_tokens: int) -> None:
        self.lm_calls += 1
        self.prompt_tokens += prompt_tokens

    def allows(self, pending: int = 0) -> bool:
        """Whether one more LM call may start with ``pending`` others still in flight."""
        return self._hit(pending) is None

    def room(self, calls: int, pending: int = 0) -> int:
        """How many of ``calls`` more LM calls may start with ``pending`` still unread."""
        n = 0
        while n < calls and self.allows(pending=pending + n):
            n += 1
        return n

    def check(self) -> None:
        """Raise LimitExceeded if the next LM call would pass a cap."""
        hit = self._hit(0)
        if hit is not None:
            raise self.exceeded(hit)

    def _hit(self, pending: int) -> str | None:
        elapsed = time.perf_counter() - self.started
        hit = None
        if self.max_lm_calls is not None and self.lm_calls + pending >= self.max_lm_calls:
            hit = f"max_lm_calls={self.max_lm_calls}"
        elif self.max_prompt_tokens is not None and self.prompt_tokens >= self.max_prompt_tokens:
            hit = f"max_prompt_tokens={self.max_prompt_tokens}"
        elif self.max_seconds is not None and elapsed >= self.max_seconds:
            hit = f"max_seconds={self.max_seconds:g}"
        return hit

    def exceeded(self, hit: str) -> LimitExceeded:
        """The error for cap ``hit`` (e.g. "max_seconds=5"), with the work done so far."""
        elapsed = time.perf_counter() - self.started
        kept = (
            "the answers so far are in the result cache (a re-run pays only for the rest)"
            if self.cached
            else "the result cache is off, so they are not kept"
        )
        return LimitExceeded(
            f"{hit} reached: stopped after {self.lm_calls} LM calls, {self.prompt_tokens} "
            f"prompt tokens, {elapsed:.1f}s; no table was changed; {kept}"
        )
