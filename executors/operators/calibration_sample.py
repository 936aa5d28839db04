"""The rows a ``batch`` calibration prior is the mean of (executors/lm/priors.py).

A plan decides which rows reach an LM operator: pushdown sends it only the rows of the
WHERE's other conjuncts, naive execution every FROM row, an early exit stops part way. A
prior drawn from those rows would make a row's answer depend on the plan. So the sample
is drawn from one set every plan agrees on: the scope's FROM under the WHERE's
relational conjuncts (``ScopePlan.population``), the distinct argument tuples ordered by
their hash (a fixed, seeded order that no other row changes) and the first ``size``
kept. Rows whose arguments are all NULL answer NULL and are left out.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from semql.planner import logical as L
from semql.planner.calls import LMCall
from semql.planner.scope_sql import scope_query

from .run_state import QueryRun

Fetch = Callable[[str], tuple[list[str], list[tuple]]]


def population_sample(
    fetch: Fetch, run: QueryRun, scope: L.ScopePlan, size: int
) -> Callable[[LMCall], list[tuple]]:
    """``call -> its sample``, each call's fetched once per run."""
    known: dict[int, list[tuple]] = {}

    def rows_of(call: LMCall) -> list[tuple]:
        if id(call) not in known:
            known[id(call)] = fetch(_sample_sql(run, scope, call, size))[1]
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
