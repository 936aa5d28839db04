"""The rows a ``batch`` calibration prior is the mean of (executors/lm/priors.py).

A plan decides which rows reach an LM operator: pushdown sends it only the rows of the
WHERE's other conjuncts, naive execution every FROM row, an early exit stops part way. A
prior drawn from those rows would make a row's answer depend on the plan. So the sample
is drawn from one set every plan agrees on: the scope's FROM under the WHERE's
relational conjuncts (``ScopePlan.population``), the distinct argument tuples ordered by
their hash (a fixed, seeded order that no other row changes) and the first ``size``
kept. Rows whose arguments are all NULL answer NULL and are left out.

The sample's SQL is written when the scope starts, before any operator of it runs: a
fixed LIMIT (executors/operators/top_k.py) then points the scope at its k rows, which
naive execution does not. Only a call whose arguments hold another LM call of the scope
waits until that one has answered.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from semql.planner import logical as L
from semql.planner.binder import calls_in
from semql.planner.calls import LMCall
from semql.planner.scope_sql import scope_query

from .run_state import QueryRun

Fetch = Callable[[str], tuple[list[str], list[tuple]]]


def population_sample(
    fetch: Fetch, run: QueryRun, scope: L.ScopePlan, size: int
) -> Callable[[LMCall], list[tuple]]:
    """``call -> its sample``, each call's fetched once per run."""
    written = {
        id(node.call): _sample_sql(run, scope, node.call, size)
        for node in scope.root.walk()
        if isinstance(node, L.LMOperator)
        and node.call is not None
        and not any(calls_in(f) for f in run.fields(node.call))
    }
    known: dict[int, list[tuple]] = {}

    def rows_of(call: LMCall) -> list[tuple]:
        if id(call) not in known:
            sql = written.get(id(call)) or _sample_sql(run, scope, call, size)
            known[id(call)] = fetch(sql)[1]
        return known[id(call)]

    return rows_of


def _sample_sql(run: QueryRun, scope: L.ScopePlan, call: LMCall, size: int) -> str:
    fields = run.fields(call)
    names = [f"__c{i}" for i in range(len(fields))]
    columns = [exp.alias_(f.copy(), n) for f, n in zip(fields, names, strict=True)]
    source = scope_query(run.select(scope), columns, [run.working(p) for p in scope.population])
    listed = ", ".join(names)
    some = " OR ".join(f"{n} IS NOT NULL" for n in names)
    return (
        f"SELECT DISTINCT {listed} FROM ({source}) WHERE {some} "
        f"ORDER BY hash({listed}), {listed} LIMIT {int(size)}"
    )
