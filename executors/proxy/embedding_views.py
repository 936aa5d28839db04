"""Embedding views: per (source, fields, embedder), a DuckDB table of row hash -> vector.

Computed in batches and kept, so every later query and question over the same rows reuses
them (ScaleLLM, seed 000). A row's hash is the md5 of the text that was embedded (its
fields, rendered as in prompts): a row that is new or whose text changed has a new hash
and is embedded on its next use; hashes no longer in the source are dropped on refresh.
Nothing is ever recomputed for rows that did not change.

Each batch is one transaction, so a process killed while building a view leaves every
finished batch usable and no half-written vector.

A read-only database's views are still read (``read_from``): its stored vectors are used,
and what is missing is embedded into the connection's private in-memory store.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from ..operators.database import table_exists
from .embeddings import Embedder

SCHEMA = "semql_embed"
REGISTRY = f"{SCHEMA}.views"
BATCH_ROWS = 64


def text_hash(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class EmbeddingStore:
    """The embedding views of one database (or of a private in-memory one, reading the
    views of ``read_from``, a read-only database, first)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        read_from: duckdb.DuckDBPyConnection | None = None,
    ):
        self.con = con
        self._read_from = read_from
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {REGISTRY} (name VARCHAR PRIMARY KEY, source VARCHAR, "
            "fields VARCHAR, embedder VARCHAR, dim INTEGER, updated TIMESTAMP)"
        )

    def view(self, source: str, fields: Sequence[str], embedder: Embedder) -> str:
        """The table of this view, created empty on first use."""
        key = "\x00".join([source, *fields, embedder.id])
        name = f"{SCHEMA}.v_{hashlib.sha1(key.encode()).hexdigest()[:16]}"
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (h VARCHAR PRIMARY KEY, v FLOAT[{embedder.dim}])"
        )
        self.con.execute(
            f"INSERT OR IGNORE INTO {REGISTRY} VALUES (?, ?, ?, ?, ?, now())",
            [name, source, ", ".join(fields), embedder.id, embedder.dim],
        )
        return name

    def _sources(self, view: str) -> list[duckdb.DuckDBPyConnection]:
        """The connections holding vectors of ``view``: the read-only file's (when it has
        the view) and this store's own."""
        ro = self._read_from
        if ro is not None and table_exists(ro, view):
            return [ro, self.con]
        return [self.con]

    def stored(self, view: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        found: dict[str, np.ndarray] = {}
        for con in self._sources(view):
            rows = con.execute(
                f"SELECT h, v FROM {view} WHERE h IN (SELECT unnest(?))", [list(hashes)]
            ).fetchall()
            found.update((h, np.asarray(v, dtype=np.float32)) for h, v in rows)
        return found

    def count_stored(self, view: str, hashes: Sequence[str]) -> int:
        # a vector is stored in one place only: the private store holds what the file lacks
        return sum(
            con.execute(
                f"SELECT count(*) FROM {view} WHERE h IN (SELECT unnest(?))", [list(hashes)]
            ).fetchall()[0][0]
            for con in self._sources(view)
        )

    def count(self, view: str) -> int:
        """Vectors stored for ``view`` (a row stored in both places counts once)."""
        hashes: set[str] = set()
        for con in self._sources(view):
            hashes.update(h for (h,) in con.execute(f"SELECT h FROM {view}").fetchall())
        return len(hashes)

    def refresh(self, view: str, current: set[str]) -> int:
        """Drop the vectors of rows no longer in the source; returns how many."""
        keep = f"__semql_keep_{uuid.uuid4().hex[:8]}"
        self.con.register(keep, pa.table({"h": sorted(current)}))
        try:
            gone = self.con.execute(
                f"SELECT count(*) FROM {view} WHERE h NOT IN (SELECT h FROM {keep})"
            ).fetchall()[0][0]
            if gone:
                self.con.execute(f"DELETE FROM {view} WHERE h NOT IN (SELECT h FROM {keep})")
        finally:
            self.con.unregister(keep)
        return gone

    def embed(
        self,
        view: str,
        texts: dict[str, str],
        embedder: Embedder,
        progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> tuple[dict[str, np.ndarray], int, float]:
        """Vectors of ``texts`` (hash -> text): stored ones read, missing ones embedded and
        stored batch by batch. Returns (vectors, rows embedded now, seconds spent).
        ``check`` (the query's caps) runs before each batch: a cap stops the build between
        batches, and the batches already stored stay whole for the next query."""
        vectors = self.stored(view, list(texts))
        missing = [h for h in texts if h not in vectors]
        started = time.perf_counter()
        for start in range(0, len(missing), BATCH_ROWS):
            if check is not None:
                check()
            batch = missing[start : start + BATCH_ROWS]
            embedded = embedder.embed([texts[h] for h in batch])
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.executemany(
                    f"INSERT OR IGNORE INTO {view} VALUES (?, ?)",
                    [(h, v.tolist()) for h, v in zip(batch, embedded, strict=True)],
                )
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            vectors.update(zip(batch, embedded, strict=True))
            if progress is not None:
                progress(start + len(batch), len(missing))
        return vectors, len(missing), time.perf_counter() - started
