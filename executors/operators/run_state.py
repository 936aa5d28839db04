"""What one execution of a plan owns: its working SQL tree and every run-time figure.

The plan is the planner's and is never written to: running it twice, or EXPLAIN ANALYZE
after a query, sees the plan as planned. Execution needs to rewrite SQL (each LM call
becomes a lookup of its answers, a fixed LIMIT becomes a temp table), so it works on its
own copy of the statement; plan expressions are translated to the copy through
:meth:`QueryRun.working`. Figures (per-operator stats, proxy reports, notes of what
happened), the order the operators ran in and where an early exit sat are kept here, for
EXPLAIN ANALYZE, ``Connection.stats`` and the REPL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from sqlglot import exp

from semql.planner import logical as L
from semql.planner.calls import LMCall, split_arguments
from semql.planner.rules.pipeline import Steps, unlink
from semql.planner.scope_sql import chain_below, predicates_in

from ..lm.stats import OperatorStats, QueryStats


@dataclass(frozen=True)
class ExitPoint:
    """Stop feeding rows to the LM once ``rows`` pass (checked every ``batch`` rows)."""

    rows: int
    batch: int


class QueryRun:
    """One execution of a :class:`~semql.planner.logical.QueryPlan`."""

    def __init__(self, plan: L.QueryPlan, stats: QueryStats):
        self.plan = plan
        self.query_stats = stats
        self.tree: exp.Expression | None = None
        self._nodes: dict[int, exp.Expression] = {}
        if plan.statement is not None:
            self.tree = plan.statement.copy()
            # copy() keeps the shape, so a parallel walk pairs each node with its copy
            for original, copied in zip(plan.statement.walk(), self.tree.walk(), strict=True):
                self._nodes[id(original)] = copied
        self.stats: dict[int, OperatorStats] = {}
        self.notes: dict[int, list[str]] = {}
        self.proxy_reports: dict[int, object] = {}
        self.done: dict[int, exp.Expression] = {}  # LMFilter -> "this row's answer is known"
        self.guards: dict[int, exp.Expression] = {}  # LM operator -> rows that need an answer
        self.exits: dict[int, ExitPoint | None] = {}  # moved by run-time filter ordering
        self._order: dict[int, Steps] = {}  # scope -> operators bottom-up, as they ran
        self.ranked: dict[int, LMCall | None] = {}  # scope -> the call precision-first ranks
        self.retriever = None  # executors/retrieval.Retriever, where a call retrieves
        # scope -> (call -> its batch-calibration rows), written when the scope starts
        self.samples: dict[int, Callable[[LMCall], list[tuple]]] = {}

    # -- the working SQL tree ----------------------------------------------------------

    def working(self, node: exp.Expression) -> exp.Expression:
        """The copy of a plan expression in this run's tree. Expressions the planner built
        outside the statement (LM-free conjuncts it copied) are read as they are."""
        return self._nodes.get(id(node), node)

    def call_nodes(self, call: LMCall) -> list[exp.Expression]:
        return [self.working(n) for n in call.nodes]

    def fields(self, call: LMCall) -> list[exp.Expression]:
        """The row fields of an LLMMap as they read now: an LM call nested in them was
        replaced by its lookup when its own operator ran."""
        if call.function == "LLMMap" and call.nodes:
            return split_arguments(self.working(call.nodes[0]))[0][1:]
        return [self.working(f.expr) for f in call.fields]

    def select(self, scope: L.ScopePlan) -> exp.Select:
        return self.working(scope.select)

    # -- operators ---------------------------------------------------------------------

    def steps(self, scope: L.ScopePlan) -> Steps:
        """The scope's operators bottom-up, in the order they run (or ran)."""
        return self._order.get(id(scope)) or unlink(scope.root)

    def set_steps(self, scope: L.ScopePlan, steps: Steps) -> None:
        self._order[id(scope)] = list(steps)

    def below(self, scope: L.ScopePlan, node: L.PlanNode) -> list[exp.Expression]:
        """Predicates of the operators that run under ``node`` (its input rows), in the
        working tree, with the "answer known" condition of filters that exit early."""
        steps = self.steps(scope)
        position = next((i for i, s in enumerate(steps) if s is node), None)
        under = steps[:position][::-1] if position is not None else chain_below(node)

        def known(step: L.LMFilter) -> list[exp.Expression]:
            return [self.done[id(step)]] if id(step) in self.done else []

        return [self.working(p) for p in predicates_in(under, known)]

    def exit_point(self, node: L.PlanNode) -> ExitPoint | None:
        if id(node) in self.exits:
            return self.exits[id(node)]
        if isinstance(node, L.LMFilter) and node.early_exit is not None:
            return ExitPoint(node.early_exit, node.batch_rows)
        return None

    def op_stats(self, node: L.PlanNode) -> OperatorStats:
        """The operator's figures, created on first use and counted in the query's."""
        op = self.stats.get(id(node))
        if op is None:
            op = OperatorStats(node.title().split("  ->")[0])
            self.query_stats.add(op)
            self.stats[id(node)] = op
        return op

    def note(self, node: L.PlanNode, text: str) -> None:
        self.notes.setdefault(id(node), []).append(text)

    def notes_of(self, node: L.PlanNode) -> list[str]:
        return self.notes.get(id(node), [])

    def stats_of(self, node: L.PlanNode) -> OperatorStats | None:
        return self.stats.get(id(node))

    def children(self, node: L.PlanNode) -> list[L.PlanNode]:
        """``node``'s inputs as they ran (a reordered group of filters runs in its new
        order), for EXPLAIN ANALYZE."""
        for scope in self.plan.scopes:
            steps = self._order.get(id(scope))
            if steps is None:
                continue
            for below, above in pairwise(steps):
                if above is node:
                    return [below]
        return node.children

    def root(self, scope: L.ScopePlan) -> L.PlanNode:
        """The scope's top operator as it ran."""
        return self.steps(scope)[-1]
