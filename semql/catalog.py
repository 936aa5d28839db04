"""The planner's view of the database, answered by DuckDB (schemas and distinct values)."""

from __future__ import annotations

import duckdb

from semql.executors.operators.duckdb_errors import duckdb_error


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBCatalog:
    """Implements ``semql.planner.binder.Catalog`` for one DuckDB connection.

    Column lists are cached for the life of one query plan; a new catalog is made per query.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._columns: dict[str, dict[str, str] | None] = {}

    def columns(self, table: str) -> dict[str, str] | None:
        key = table.lower()
        if key not in self._columns:
            try:
                rows = self.con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()
                self._columns[key] = {r[0].lower(): r[1] for r in rows}
            except duckdb.Error:
                self._columns[key] = None
        return self._columns[key]

    def distinct_values(self, table: str, column: str, limit: int) -> tuple:
        sql = (
            f"SELECT DISTINCT {quote_ident(column)} FROM {quote_ident(table)} "
            f"WHERE {quote_ident(column)} IS NOT NULL ORDER BY 1 LIMIT {int(limit)}"
        )
        return tuple(r[0] for r in self._run(sql))

    def fetch_row(self, sql: str) -> tuple:
        return self._run(sql)[0]

    def fetch_rows(self, sql: str) -> list[tuple]:
        return self._run(sql)

    def query_column(self, sql: str) -> list:
        return [r[0] for r in self._run(sql)]

    def _run(self, sql: str) -> list[tuple]:
        try:
            return self.con.execute(sql).fetchall()
        except duckdb.Error as err:
            raise duckdb_error(err, sql) from None
