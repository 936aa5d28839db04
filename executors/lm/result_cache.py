"""Result cache: (model sha256, decoding version, prompt, grammar) -> output text, in DuckDB.

It lives in the connection's own database file when there is one (schema
``semql_cache``), so it travels with the data; in a separate DuckDB file given by
``cache=PATH``; or in a private in-memory database. Entries are written in one
transaction per batch, so a process killed halfway leaves every finished batch usable
and no half-written entry. A read-only database's own cache is still read (``read_from``):
its answers are not paid for again, and new ones go to the private cache only.
"""

from __future__ import annotations

import hashlib

import duckdb

from ..operators.database import table_exists

TABLE = "semql_cache.lm_results"


def cache_key(model_id: str, grammar: str, prompt: str) -> str:
    h = hashlib.sha256()
    for part in (model_id, grammar, prompt):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class ResultCache:
    """A key -> text table; ``ResultCache(None)`` is a disabled cache."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection | None,
        read_from: duckdb.DuckDBPyConnection | None = None,
    ):
        self._con = con
        if con is not None:
            con.execute("CREATE SCHEMA IF NOT EXISTS semql_cache")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (key VARCHAR PRIMARY KEY, output VARCHAR)"
            )
        self._read_from = (
            read_from if read_from is not None and table_exists(read_from, TABLE) else None
        )

    @property
    def enabled(self) -> bool:
        return self._con is not None

    def get_many(self, keys: list[str]) -> dict[str, str]:
        if self._con is None or not keys:
            return {}
        found: dict[str, str] = {}
        for con in (self._read_from, self._con):
            if con is not None:
                found.update(
                    con.execute(
                        f"SELECT key, output FROM {TABLE} WHERE key IN (SELECT unnest(?))", [keys]
                    ).fetchall()
                )
        return found

    def put_many(self, items: list[tuple[str, str]]) -> None:
        if self._con is None or not items:
            return
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            con.executemany(f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?)", items)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def clear(self) -> None:
        if self._con is not None:
            self._con.execute(f"DELETE FROM {TABLE}")

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()
        self._read_from = None  # the database's own cursor: closed with the database
