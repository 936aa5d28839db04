"""A LIMIT fixed before the SELECT list's LM calls run (the late_select rule's top-k):
the rows that survive ORDER BY/LIMIT go into a table, and the scope reads them there."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from ..scope_sql import scope_query
from .column_slots import ColumnSlots


def fix_limited_rows(select: exp.Select, below: list[exp.Expression], table: str) -> str:
    """The SQL that fixes the rows; ``select`` (the working tree's) then reads them.

    The SELECT list's LM calls then run on those k rows only, and the final query
    reads exactly the rows they ran on (a LIMIT without a total order could pick
    other rows on a second evaluation).
    """
    slots = ColumnSlots(list(select.expressions))
    aliases = {e.alias: e.this for e in select.expressions if isinstance(e, exp.Alias)}
    order = select.args.get("order")
    keys = []
    for key in order.expressions if order is not None else []:
        key = key.copy()
        for col in list(key.find_all(exp.Column)):
            if not col.table and col.name in aliases:
                col.replace(aliases[col.name].copy())
        keys.append(key)
    window = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=keys) if keys else None)
    query = sqlglot.parse_one(
        scope_query(select, slots.projection() + [exp.alias_(window, "__pos")], below),
        read="duckdb",
    )
    if keys:
        query.set("order", exp.Order(expressions=keys))
    query.set("limit", select.args["limit"].copy())
    if select.args.get("offset") is not None:
        query.set("offset", select.args["offset"].copy())
    for item in select.expressions:
        if isinstance(item, exp.Column):
            item = item.replace(exp.alias_(item.copy(), item.output_name))
        slots.redirect(item, table)
    select.set("from_", exp.From(this=exp.to_table(table)))
    for arg in ("joins", "where", "limit", "offset"):
        select.set(arg, None)
    select.set("order", exp.Order(expressions=[exp.Ordered(this=exp.column("__pos", table))]))
    return f"CREATE TEMP TABLE {table} AS {query.sql(dialect='duckdb')}"
