"""The DuckDB side of one execution: reads and statements with DuckDB's errors mapped to
SemQL's (located in the user's query where possible), Arrow data loaded into tables,
and the query's temp tables, named apart from the user's and dropped afterwards."""

from __future__ import annotations

import uuid

import duckdb
import polars as pl
import pyarrow as pa

from .duckdb_errors import duckdb_error


class Database:
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.prefix = f"__semql_{uuid.uuid4().hex[:8]}"
        self._temp: list[str] = []

    def fetch(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of a query."""
        try:
            cur = self.con.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
        except duckdb.Error as err:
            raise duckdb_error(err, sql) from None

    def exec(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except duckdb.Error as err:
            raise duckdb_error(err, sql) from None

    def frame(
        self, sql: str, params=None, transactional: bool = False, own: bool = False
    ) -> pl.DataFrame:
        """The result of the statement as a polars frame (empty for DDL/DML), in one
        transaction when it writes; ``own``: the SQL is the user's, as written."""
        con = self.con
        try:
            if transactional:
                con.execute("BEGIN TRANSACTION")
                try:
                    rel = con.sql(sql, params=params)
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            else:
                rel = con.sql(sql, params=params)
            return rel.pl() if rel is not None else pl.DataFrame()
        except duckdb.Error as err:
            raise duckdb_error(err, sql, own) from None

    def load(self, sql: str, name: str, data: pa.Table) -> None:
        """Run ``sql``, which reads the Arrow table ``data`` as ``name``."""
        self.con.register(name, data)
        try:
            self.exec(sql)
        finally:
            self.con.unregister(name)

    def own(self, names: list[str]) -> None:
        """Temp tables this query may create (named by its physical plan under
        ``prefix``), dropped with the rest afterwards."""
        self._temp += [n for n in names if n not in self._temp]

    def drop_temp(self) -> None:
        for name in reversed(self._temp):
            try:
                self.con.execute(f"DROP TABLE IF EXISTS {name}")
            except duckdb.Error:
                pass
        self._temp.clear()


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.table`` exists (a read-only file may lack SemQL's own tables)."""
    schema, name = qualified.split(".")
    return bool(
        con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    )
