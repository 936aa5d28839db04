"""Run-time ordering of a conjunction's LM filters (the predicate_order rule).

The planner marks groups of LM filters that may run in any order; here each is tried on
the same small sample of the group's input rows and its selectivity and cost measured;
the planner's :func:`~semql.planner.rules.predicate_order.reorder` then decides the order
(rank = cost per row / (1 - selectivity), cheapest-and-most-selective first). The
sampled answers are remembered by the LM executor, so they are not asked twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from semql.planner import logical as L
from semql.planner.calls import split_arguments
from semql.planner.cost import DEFAULT_PROFILE, call_seconds, output_tokens, prompt_tokens
from semql.planner.rules.pipeline import Steps, lm_calls_in
from semql.planner.rules.predicate_order import SAMPLE_ROWS, group_units, reorder
from semql.planner.scope_sql import (
    argument_columns,
    argument_name,
    same_arguments,
    scope_query,
)

from ..lm.stats import OperatorStats
from .column_slots import ColumnSlots
from .database import Database
from .run_state import ExitPoint, QueryRun


@dataclass(frozen=True)
class SampleIO:
    """What sampling needs from the engine: the query's database side and its answers to
    an operator's rows (the node's LM task with the run's inputs)."""

    db: Database
    answer: Callable[..., list]


class _Sample:
    """The group's sample rows as an Arrow view, and the predicates evaluated over it."""

    def __init__(self, io: SampleIO, select: exp.Select, below: list[exp.Expression], preds):
        self.io = io
        self.view = f"__semql_sample_{uuid.uuid4().hex[:8]}"
        self.slots = ColumnSlots(list(preds))
        cols = self.slots.projection()
        # The first rows in input order: the filters' first batches are the same rows,
        # so under an early exit the sampled answers are the ones needed anyway.
        sql = f"{scope_query(select, cols, below)} LIMIT {SAMPLE_ROWS}"
        names, rows = io.db.fetch(sql)
        self.size = len(rows)
        data = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        self.views = [self.view]
        io.db.con.register(self.view, pa.table(data) if rows else pa.table({n: [] for n in names}))

    def over_sample(self, node: exp.Expression) -> exp.Expression:
        """``node`` (a copy) reading the sample view's columns instead of the scope's."""
        return self.slots.redirect(node, self.view)

    def answer(
        self, node: L.LMOperator, op: OperatorStats, args: list[exp.Expression]
    ) -> tuple[str, float]:
        """Answer the call for the sample's distinct argument tuples; (answers view, chars)."""
        select = ", ".join(c.sql(dialect="duckdb") for c in argument_columns(args))
        _, rows = self.io.db.fetch(f"SELECT DISTINCT {select} FROM {self.view}")
        answers = self.io.answer(node, rows, op, remember=True)
        view = f"{self.view}_a{len(self.views)}"
        data = {argument_name(i): [r[i] for r in rows] for i in range(len(args))}
        data["__out"] = answers
        self.io.db.con.register(view, pa.table(data) if rows else pa.table({"__out": []}))
        self.views.append(view)
        chars = [len(str(v)) for r in rows for v in r if v is not None]
        return view, (sum(chars) / len(rows) if rows else 0.0)

    def close(self) -> None:
        for view in self.views:
            self.io.db.con.unregister(view)


def _measure(sample: _Sample, unit: list[L.LMOperator], run: QueryRun, profile) -> tuple:
    """(selectivity, seconds per row, rows passing, rows) of one unit on the sample."""
    pred = run.working(unit[-1].predicate)
    calls = {id(n): op.call for op in unit for n in run.call_nodes(op.call)}
    originals = lm_calls_in(pred)
    copy = pred.copy()
    copies = lm_calls_in(copy)
    sample.over_sample(copy)
    cost = 0.0
    for original, node in zip(originals, copies, strict=True):
        call = calls[id(original)]
        op = next(o for o in unit if o.call is call)
        scratch = OperatorStats("sample")
        args = split_arguments(node)[0][1:]
        view, chars = sample.answer(op, scratch, args)
        run.op_stats(op).absorb(scratch)
        conds = same_arguments(args)
        node.replace(exp.maybe_parse(f"(SELECT any_value(__out) FROM {view} WHERE {conds})"))
        per_field = {f.name: chars / len(call.fields) for f in call.fields}
        shared, row = prompt_tokens(
            call.question, call.output, call.examples, per_field, profile.chars_per_token
        )
        cost += call_seconds(shared, row, output_tokens(call.output), profile)
    _, rows = sample.io.db.fetch(
        f"SELECT count(*) FILTER (WHERE {copy.sql(dialect='duckdb')}), count(*) FROM {sample.view}"
    )
    passed, n = rows[0]
    return (passed + 0.5) / (n + 1), cost, passed, n


def order_filters(
    io: SampleIO, run: QueryRun, scope: L.ScopePlan, steps: Steps, i: int, profile
) -> Steps:
    """The scope's steps with the group of LM filters at ``steps[i]`` in the order the
    planner's ``reorder`` gives for the ranks measured here; the run records the order
    and where the early exit now sits."""
    profile = profile or DEFAULT_PROFILE
    _, units = group_units(steps, i)
    preds = [run.working(u[-1].predicate) for u in units]
    sample = _Sample(io, run.select(scope), run.below(scope, steps[i]), preds)
    try:
        ranks = []
        for unit in units:
            sel, cost, passed, n = _measure(sample, unit, run, profile)
            rank = cost / (1.0 - sel)
            run.note(
                unit[-1],
                f"sampled: {passed}/{n} rows pass, ~{cost * 1000:.0f} ms/row, rank {rank:.3f}",
            )
            ranks.append(rank)
    finally:
        sample.close()
    new = reorder(steps, i, ranks)
    if new.exit_from is not None:  # early exit belongs to whichever filter now runs last
        point = ExitPoint(new.exit_from.early_exit, new.exit_from.batch_rows)
        for op in new.steps:
            if isinstance(op, L.LMOperator) and op.reorder_group == steps[i].reorder_group:
                run.exits[id(op)] = None
        run.exits[id(new.exit_to)] = point
    run.set_steps(scope, new.steps)
    return new.steps
