"""Requests kept in flight ahead of the row being answered, for runtimes that take
several at once (servers: ``Runtime.concurrency``).

The LM executor decides first which rows need the model (after dedup, the result cache
and remembered answers), in the order it will read them; up to ``window`` of those
requests are sent ahead from a thread pool, and their results are read back in that
same order, so answers, statistics and the cache are those of sequential execution.
Each request is checked against the query's caps when it is sent, counting those still
in flight, so ``max_lm_calls`` holds exactly; a request refused by a cap raises when the
executor reaches its row, after the answers before it were kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from .budget import Budget


class Prefetch:
    """``take(i)``: the result of ``request(i)`` for job ``i``, sent ahead of time."""

    def __init__(
        self,
        request: Callable[[int], object],
        jobs: Sequence[int],
        window: int,
        budget: Budget | None = None,
    ):
        self._request = request
        self._jobs = list(jobs)
        self._next = 0
        self._window = window
        self._budget = budget
        self._pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="semql-lm")
        self._flying: dict[int, Future] = {}
        self.retries = 0  # none here: a server pool fails over inside http_runtime.py

    def _fill(self) -> None:
        while len(self._flying) < self._window and self._next < len(self._jobs):
            if self._budget is not None and not self._budget.allows(pending=len(self._flying)):
                return
            job = self._jobs[self._next]
            self._next += 1
            self._flying[job] = self._pool.submit(self._request, job)

    def take(self, job: int):
        self._fill()
        if job not in self._flying:  # a cap refused it: say which, with the work done
            if self._budget is not None:
                self._budget.check()
            raise RuntimeError(f"request {job} was never sent")  # a bug, not bad input
        return self._flying.pop(job).result()  # the next take refills, once this is spent

    def close(self) -> None:
        """Cancel what was not sent; what is in flight finishes in the background and
        its answers are dropped (a cancelled query does not wait for a server)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
