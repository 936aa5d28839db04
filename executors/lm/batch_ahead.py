"""Rows answered several at a time on an in-process model (``batch_rows`` > 1, or the
generated answers of a map's rows sharing their steps where rows go one at a time:
shared_steps.py, ``step_rows`` rows to a step decode).

The in-process runtime answers ``batch_rows`` rows in one fixed-shape decode (label scores:
executors/runtimes/batch_scorer.py; generated answers: batch_generator.py), and a row's
answer does not depend on its batch mates,
so the LM executor may hand it the next rows before it reads their answers. The executor
decides first which rows need the model (after dedup, the result cache and remembered
answers), in the order it will read them; when it reaches a row not yet scored, the next
``CALL_BATCHES x batch_rows`` of those rows go to the runtime in one call, and results
are read back in the executor's order, so answers, statistics and the cache are those of
one row at a time. A call is cut to the LM calls the query's budget still allows
(counting rows scored and not yet read), so ``max_lm_calls`` holds exactly; a row refused
by a cap raises when the executor reaches it, after the answers before it were kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from semql.grammar.types import OutputType

from ..runtimes.runtime import CALL_BATCHES
from .budget import Budget


class BatchAhead:
    """``take(job)``: the answer to job's prompt (label scores or a generation), computed
    with the rows after it."""

    def __init__(
        self,
        runtime,
        prompts: dict[int, str],
        jobs: Sequence[int],
        out_type: OutputType,
        scored: bool,
        budget: Budget | None = None,
        steps: bool = False,
    ):
        self._prompts = prompts
        self._jobs = list(jobs)
        self._out_type = out_type
        self._ask_many = runtime.score_many if scored else runtime.generate_many
        self._rows = runtime.batch_rows
        if steps:  # generated rows with their answer steps shared (shared_steps.py)
            self._ask_many, self._rows = runtime.generate_rows, runtime.step_rows
        self._budget = budget
        self._next = 0
        self._done: dict[int, object] = {}
        self.retries = 0  # nothing is retried in-process

    def _score_next(self) -> None:
        n = min(CALL_BATCHES * self._rows, len(self._jobs) - self._next)
        if self._budget is not None:
            n = self._budget.room(n, pending=len(self._done))
        batch = self._jobs[self._next : self._next + n]
        self._next += n
        if batch:
            results = self._ask_many([self._prompts[j] for j in batch], self._out_type)
            self._done.update(zip(batch, results, strict=True))

    def take(self, job: int):
        if job not in self._done:
            self._score_next()
        if job not in self._done:  # a cap refused it: say which, with the work done
            if self._budget is not None:
                self._budget.check()
            raise RuntimeError(f"request {job} was never sent")  # a bug, not bad input
        return self._done.pop(job)

    def close(self) -> None:
        """Rows scored and not read are dropped with the query (nothing runs behind)."""
        self._done.clear()
