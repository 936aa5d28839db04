"""What one execution of a plan owns: its compiled stages and every run-time figure.

The plan is the planner's and is never written to: running it twice, or EXPLAIN ANALYZE
after a query, sees the plan as planned. What the run decided (the physical plan under
its choices: LLMQA answers, precision-first, filter order) is the last
:class:`~semql.planner.physical.Compiled` it ran. Figures (per-operator stats, proxy
reports, notes of what happened) are kept here, keyed by the plan operator a stage
runs, for EXPLAIN ANALYZE, ``Connection.stats`` and the REPL.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from semql.planner.physical.compiler import Compiled

from ..lm.stats import OperatorStats, QueryStats


class QueryRun:
    """One execution of a :class:`~semql.planner.logical.QueryPlan`."""

    def __init__(self, plan, stats: QueryStats):
        self.plan = plan
        self.query_stats = stats
        self.compiled: Compiled | None = None  # the physical plan as it ran (or runs)
        self.stats: dict[int, OperatorStats] = {}
        self.notes: dict[int, list[str]] = {}
        self.proxy_reports: dict[int, object] = {}
        self.retriever = None  # executors/retrieval.Retriever, where a call retrieves
        self.samples: dict[str, list[tuple]] = {}  # calibration sample SQL -> its rows

    def sample_rows(self, sql: str, fetch: Callable) -> list[tuple]:
        """A calibration sample's rows, fetched once per run."""
        if sql not in self.samples:
            self.samples[sql] = fetch(sql)[1]
        return self.samples[sql]

    # -- figures -----------------------------------------------------------------------

    def op_stats(self, key: int, title: str) -> OperatorStats:
        """The operator's figures, created on first use and counted in the query's."""
        op = self.stats.get(key)
        if op is None:
            op = OperatorStats(title)
            self.query_stats.add(op)
            self.stats[key] = op
        return op

    def note(self, key: int, text: str) -> None:
        self.notes.setdefault(key, []).append(text)

    def notes_of(self, node) -> list[str]:
        return self.notes.get(id(node), [])

    def stats_of(self, node) -> OperatorStats | None:
        return self.stats.get(id(node))

    # -- the order operators ran in, for EXPLAIN ANALYZE ---------------------------------

    def children(self, node) -> list:
        """``node``'s inputs as they ran (a reordered group of filters runs in its new
        order)."""
        if self.compiled is not None:
            for index, _ in enumerate(self.plan.scopes):
                for below, above in pairwise(self.compiled.steps(index)):
                    if above is node:
                        return [below]
        return node.children

    def steps(self, scope) -> list:
        """The scope's operators bottom-up, in the order they ran."""
        if self.compiled is None:
            return [scope.root]
        index = next(i for i, s in enumerate(self.plan.scopes) if s is scope)
        return self.compiled.steps(index)

    def root(self, scope):
        """The scope's top operator as it ran."""
        return self.steps(scope)[-1]
