"""Run-time ordering of a conjunction's LM filters (the predicate_order rule).

The planner marks groups of LM filters that may run in any order; here each is tried on
the same small sample of the group's input rows, its selectivity measured, and the group
reordered by rank = cost per row / (1 - selectivity), cheapest-and-most-selective first.
The sampled answers are remembered by the LM executor, so they are not asked twice.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
from sqlglot import exp

from semql.planner import logical as L
from semql.planner.calls import split_arguments
from semql.planner.cost import DEFAULT_PROFILE, call_seconds, output_tokens, prompt_tokens
from semql.planner.rules.pipeline import Steps, link, lm_calls_in
from semql.planner.rules.predicate_order import SAMPLE_ROWS
from semql.planner.rules.predicate_order import units as predicate_units
from semql.planner.scope_sql import predicates_below, row_columns, scope_query

from .stats import OperatorStats, QueryStats, attach_stats


class _Sample:
    """The group's sample rows as an Arrow view, and the predicates evaluated over it."""

    def __init__(self, engine, select: exp.Select, below: list[exp.Expression], preds):
        self.engine = engine
        self.view = f"__semql_sample_{uuid.uuid4().hex[:8]}"
        self.names: dict[str, str] = {}
        for pred in preds:
            for col in row_columns(pred):
                self.names.setdefault(col.sql(dialect="duckdb"), f"__c{len(self.names)}")
        cols = [
            exp.alias_(exp.maybe_parse(sql, dialect="duckdb"), n) for sql, n in self.names.items()
        ]
        # The first rows in input order: the filters' first batches are the same rows,
        # so under an early exit the sampled answers are the ones needed anyway.
        sql = f"{scope_query(select, cols, below)} LIMIT {SAMPLE_ROWS}"
        names, rows = engine._fetch(sql)
        self.size = len(rows)
        data = {n: [r[i] for r in rows] for i, n in enumerate(names)}
        self.views = [self.view]
        engine.con.register(self.view, pa.table(data) if rows else pa.table({n: [] for n in names}))

    def over_sample(self, node: exp.Expression) -> exp.Expression:
        """``node`` (a copy) reading the sample view's columns instead of the scope's."""
        for col in list(node.find_all(exp.Column)):
            name = self.names.get(col.sql(dialect="duckdb"))
            if name is not None:
                col.replace(exp.column(name, table=self.view))
        return node

    def answer(
        self, node: L.LMOperator, op: OperatorStats, args: list[exp.Expression]
    ) -> tuple[str, float]:
        """Answer the call for the sample's distinct argument tuples; (answers view, chars)."""
        select = ", ".join(f"{a.sql(dialect='duckdb')} AS __a{i}" for i, a in enumerate(args))
        _, rows = self.engine._fetch(f"SELECT DISTINCT {select} FROM {self.view}")
        answers = self.engine._lm().answer_rows(node, rows, op, remember=True)
        view = f"{self.view}_a{len(self.views)}"
        data = {f"__a{i}": [r[i] for r in rows] for i in range(len(args))}
        data["__out"] = answers
        self.engine.con.register(view, pa.table(data) if rows else pa.table({"__out": []}))
        self.views.append(view)
        chars = [len(str(v)) for r in rows for v in r if v is not None]
        return view, (sum(chars) / len(rows) if rows else 0.0)

    def close(self) -> None:
        for view in self.views:
            self.engine.con.unregister(view)


def _measure(sample: _Sample, unit: list[L.LMOperator], stats: QueryStats, profile) -> tuple:
    """(selectivity, seconds per row) of one unit on the sample."""
    pred = unit[-1].predicate
    calls = {id(n): op.call for op in unit for n in op.call.nodes}
    originals = lm_calls_in(pred)
    copy = pred.copy()
    copies = lm_calls_in(copy)
    sample.over_sample(copy)
    cost = 0.0
    for original, node in zip(originals, copies, strict=True):
        call = calls[id(original)]
        op = next(o for o in unit if o.call is call)
        if not isinstance(op.stats, OperatorStats):
            attach_stats(op, stats)
        scratch = OperatorStats("sample")
        args = split_arguments(node)[0][1:]
        view, chars = sample.answer(op, scratch, args)
        op.stats.absorb(scratch)
        conds = " AND ".join(
            f"__a{i} IS NOT DISTINCT FROM ({a.sql(dialect='duckdb')})" for i, a in enumerate(args)
        )
        node.replace(exp.maybe_parse(f"(SELECT any_value(__out) FROM {view} WHERE {conds})"))
        shared, row = prompt_tokens(
            call.question,
            call.output,
            call.examples,
            {"all": chars},
            profile.chars_per_token,
        )
        cost += call_seconds(shared, row, output_tokens(call.output), profile)
    _, rows = sample.engine._fetch(
        f"SELECT count(*) FILTER (WHERE {copy.sql(dialect='duckdb')}), count(*) FROM {sample.view}"
    )
    passed, n = rows[0]
    return (passed + 0.5) / (n + 1), cost, passed, n


def order_filters(
    engine, steps: Steps, i: int, select: exp.Select, stats: QueryStats, profile
) -> Steps:
    """Reorder the group of LM filters starting at ``steps[i]``; returns the linked steps."""
    profile = profile or DEFAULT_PROFILE
    group = steps[i].reorder_group
    j = i
    while j < len(steps) and isinstance(steps[j], L.LMOperator):
        if steps[j].reorder_group != group:
            break
        j += 1
    units = [u for u in predicate_units(steps[i:j]) if u]
    link(steps)
    sample = _Sample(engine, select, predicates_below(steps[i]), [u[-1].predicate for u in units])
    try:
        ranked = []
        for position, unit in enumerate(units):
            sel, cost, passed, n = _measure(sample, unit, stats, profile)
            rank = cost / (1.0 - sel)
            unit[-1].notes.append(
                f"sampled: {passed}/{n} rows pass, ~{cost * 1000:.0f} ms/row, rank {rank:.3f}"
            )
            ranked.append((rank, position, unit))
    finally:
        sample.close()
    ranked.sort(key=lambda t: (t[0], t[1]))
    ordered = [op for _, _, unit in ranked for op in unit]
    exits = [op for op in ordered if isinstance(op, L.LMFilter) and op.early_exit is not None]
    if exits:  # early exit belongs to whichever filter now runs last
        limit, batch = exits[0].early_exit, exits[0].batch_rows
        for op in exits:
            op.early_exit = None
        ordered[-1].early_exit, ordered[-1].batch_rows = limit, batch
    for op in ordered:
        op.reorder_group = None
    new = [*steps[:i], *ordered, *steps[j:]]
    link(new)
    return new
