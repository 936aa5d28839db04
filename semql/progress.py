"""A live progress line for LM work on a terminal (stderr), and nothing elsewhere.

A connection shows it by default (``connect(progress=None)``): a script run in a terminal
sees how far a long query is and when it will end; output to a file, a pipe or a test
runner's capture is no terminal and gets nothing."""

from __future__ import annotations

import sys
import time

from semql.executors.lm.lm_executor import Progress
from semql.executors.lm.stats import OperatorStats


class ProgressLine:
    """Callback for ``Connection(progress=...)``: one line, rewritten in place.

    Shows the operator, rows done / planned, LM calls and cache hits, tokens/s and an ETA.
    Redraws at most every 0.1 s; ``clear()`` removes the line before results print.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._shown = False
        self._last = 0.0
        self._started: dict[int, float] = {}

    def __call__(self, op: OperatorStats, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        started = self._started.setdefault(id(op), now)
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        elapsed = max(now - started, 1e-6)
        tokens = op.prompt_tokens - op.cached_prompt_tokens + op.generated_tokens
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and done < total else 0.0
        name = op.operator.split("(")[0][:40]
        line = (
            f"{name}: {done}/{total} rows · {op.lm_calls} LM calls · {op.cache_hits} cached · "
            f"{tokens / elapsed:.0f} tok/s · ETA {eta:.0f}s  (Ctrl-C cancels)"
        )
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
        self._started.clear()


def progress_for(setting: Progress | bool | None) -> Progress | None:
    """A connection's progress callback: a line on stderr where it is a terminal (None or
    True), none (False), or the caller's own callable."""
    if setting is None or setting is True:
        return ProgressLine()
    return setting or None
