"""Run-time ordering of a conjunction's LM filters (the predicate_order rule): the
measuring half.

The planner marks groups of LM filters that may run in any order and compiles a
:class:`~semql.planner.physical.GroupSample` for each: the group's first rows, and per
predicate the SQL that tries it on them. Here those rows are read, each predicate's
calls answered on them, and the rows each predicate passes counted; the planner then
ranks and orders the group (``Compiled.after_sampling``). The sampled answers are
remembered by the LM executor, so they are not asked twice.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from semql.planner.physical import GroupSample, SampledCall

from ..lm.stats import OperatorStats
from .database import Database
from .run_state import QueryRun


def measure_group(stage: GroupSample, db: Database, run: QueryRun, answer: Callable) -> list:
    """Per predicate of the group: (sample rows passing, sample rows, the mean
    characters of each call's distinct argument tuples)."""
    names, rows = db.fetch(stage.sample_sql)
    data = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    views = [stage.view]
    db.con.register(stage.view, pa.table(data) if rows else pa.table({n: [] for n in names}))
    try:
        measured = []
        for unit in stage.units:
            chars = []
            for call in unit.calls:
                chars.append(_answer_call(call, db, run, answer))
                views.append(call.answers)
            _, counted = db.fetch(unit.count_sql)
            passed, n = counted[0]
            measured.append((passed, n, chars))
        return measured
    finally:
        for view in views:
            db.con.unregister(view)


def _answer_call(call: SampledCall, db: Database, run: QueryRun, answer: Callable) -> float:
    """Answer one call for the sample's distinct argument tuples into its view; the mean
    characters of those tuples (the cost model's input)."""
    _, rows = db.fetch(call.args_sql)
    scratch = OperatorStats("sample")
    answers = answer(call, rows, scratch, remember=True)
    run.op_stats(call.key, call.title).absorb(scratch)
    data = {name: [r[i] for r in rows] for i, name in enumerate(call.columns)}
    data["__out"] = answers
    db.con.register(call.answers, pa.table(data) if rows else pa.table({"__out": []}))
    chars = [len(str(v)) for r in rows for v in r if v is not None]
    return sum(chars) / len(rows) if rows else 0.0
