"""How an LM operator's answers meet the rest of the query: correlated lookups.

For each LM operator the engine keeps two temp tables: ``inputs`` (``__idx`` and the
distinct argument tuples ``__a0, __a1, ...``) and ``results`` (``__idx``, ``__out`` and
the precision-first key ``__rank``). Every occurrence of the call in the query becomes

    (SELECT any_value(__r.__out) FROM inputs AS __i JOIN results AS __r USING (__idx)
     WHERE __i.__a0 IS NOT DISTINCT FROM <arg 0> ...)

which DuckDB decorrelates into a hash join, so joins, aggregates, ORDER BY and LIMIT keep
DuckDB's own semantics. The same shape asks whether a row is answered yet (early exit)
and orders rows by the confidence of their answer (precision-first).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from ..scope_sql import same_arguments


def answered_rows(fields: list[exp.Expression], inputs: str, results: str, select: str) -> str:
    """``SELECT {select}`` over the answered input tuples equal to this row's fields."""
    conds = same_arguments(fields, "__i")
    return (
        f"SELECT {select} FROM {inputs} AS __i JOIN {results} AS __r "
        f"ON __r.__idx = __i.__idx WHERE {conds}"
    )


def lookup(fields: list[exp.Expression], inputs: str, results: str) -> exp.Expression:
    """The row's answer: replaces the call in the query."""
    sql = answered_rows(fields, inputs, results, "any_value(__r.__out)")
    return sqlglot.parse_one(f"({sql})", read="duckdb")


def known(
    fields: list[exp.Expression], inputs: str, results: str, guard: exp.Expression | None
) -> exp.Expression:
    """Whether the row's answer is known yet (early exit stops before all are).

    A row the short-circuit guard leaves out is known without an answer.
    """
    sql = answered_rows(fields, inputs, results, "1")
    answered = sqlglot.parse_one(f"EXISTS ({sql})", read="duckdb")
    if guard is None:
        return answered
    return exp.or_(exp.Not(this=exp.Paren(this=guard.copy())), answered)


def by_confidence(fields: list[exp.Expression], inputs: str, results: str) -> exp.Order:
    """ORDER BY the confidence of the row's answer (highest first), then the order the
    rows came in: LIMIT k then keeps the k rows the model is surest of."""
    conf = answered_rows(fields, inputs, results, "any_value(__r.__rank)")
    idx = answered_rows(fields, inputs, results, "min(__i.__idx)")
    keys = [
        exp.Ordered(
            this=sqlglot.parse_one(f"({conf})", read="duckdb"), desc=True, nulls_first=False
        ),
        exp.Ordered(this=sqlglot.parse_one(f"({idx})", read="duckdb"), nulls_first=False),
    ]
    return exp.Order(expressions=keys)
