"""Row columns copied into a table of the run's own (a sample, the top-k rows), and the
expressions that read them there: one name per distinct column, ``__c0``, ``__c1``, ..."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from ..scope_sql import row_columns


class ColumnSlots:
    """The row columns of some expressions, each given a slot name."""

    def __init__(self, nodes: list[exp.Expression]):
        self.names: dict[str, str] = {}  # the column's SQL -> its slot
        for node in nodes:
            for col in row_columns(node):
                self.names.setdefault(col.sql(dialect="duckdb"), f"__c{len(self.names)}")

    def projection(self) -> list[exp.Expression]:
        """The SELECT list that copies each column into its slot."""
        names = self.names.items()
        return [exp.alias_(sqlglot.parse_one(sql, read="duckdb"), n) for sql, n in names]

    def redirect(self, node: exp.Expression, table: str) -> exp.Expression:
        """``node``, its columns read from their slots in ``table`` (edited in place)."""
        for col in list(row_columns(node)):
            name = self.names.get(col.sql(dialect="duckdb"))
            if name is not None:
                col.replace(exp.column(name, table=table))
        return node
