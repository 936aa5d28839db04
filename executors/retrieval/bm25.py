"""A BM25 term index stored in DuckDB, and Okapi BM25 scores computed by DuckDB.

Per index, two tables: ``docs`` (row hash, length in terms) and ``terms`` (row hash,
term, frequency). Rows are keyed by the hash of their text, as embedding views are, so
an unchanged row is never tokenised again and a changed one is a new row. A row's
document entry and its terms are written in one transaction: a build that is killed
leaves whole rows or none (a row without its ``docs`` entry is never scored).

Collection statistics (document frequencies, mean length) are taken over the rows being
searched, not the whole index: BM25 over a filtered subquery is BM25 over its rows.
The extensions with full-text search (DuckDB's ``fts``) are not bundled and would be
downloaded at run time, so the index and the scoring are plain SQL.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable

import duckdb
import pyarrow as pa
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

SCHEMA = "semql_index"
BATCH_ROWS = 512
K1, B = 1.2, 0.75  # Robertson's usual constants, not tuned here

_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    """Lower-case words without accents, English stop words dropped."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [w for w in _WORD.findall(plain) if w not in ENGLISH_STOP_WORDS]


class Bm25Index:
    """One BM25 index (its two tables) on ``con``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, key: str):
        self.con = con
        self.name = f"{SCHEMA}.b_{hashlib.sha1(key.encode()).hexdigest()[:16]}"
        self.docs, self.terms = f"{self.name}_docs", f"{self.name}_terms"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.docs} (h VARCHAR PRIMARY KEY, len INTEGER)")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {self.terms} (h VARCHAR, term VARCHAR, tf INTEGER)"
        )

    def _with_hashes(self, hashes: Iterable[str]) -> str:
        view = f"__semql_h_{uuid.uuid4().hex[:8]}"
        self.con.register(view, pa.table({"h": pa.array(sorted(set(hashes)), pa.string())}))
        return view

    def missing(self, texts: dict[str, str]) -> list[str]:
        view = self._with_hashes(texts)
        try:
            rows = self.con.execute(
                f"SELECT h FROM {view} WHERE h NOT IN (SELECT h FROM {self.docs}) ORDER BY h"
            ).fetchall()
        finally:
            self.con.unregister(view)
        return [h for (h,) in rows]

    def build(
        self,
        texts: dict[str, str],
        progress: Callable[[int, int], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> int:
        """Index the rows of ``texts`` (hash -> text) not indexed yet; how many.
        ``check`` (the query's caps) runs before each batch, as EmbeddingStore.embed's."""
        todo = self.missing(texts)
        for start in range(0, len(todo), BATCH_ROWS):
            if check is not None:
                check()
            batch = todo[start : start + BATCH_ROWS]
            docs, terms = [], []
            for h in batch:
                counts = Counter(tokens(texts[h]))
                docs.append((h, sum(counts.values())))
                terms += [(h, t, n) for t, n in counts.items()]
            self.con.execute("BEGIN TRANSACTION")
            try:
                if terms:
                    self.con.executemany(f"INSERT INTO {self.terms} VALUES (?, ?, ?)", terms)
                self.con.executemany(f"INSERT INTO {self.docs} VALUES (?, ?)", docs)
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            if progress is not None:
                progress(start + len(batch), len(todo))
        return len(todo)

    def refresh(self, current: set[str]) -> int:
        """Drop the rows no longer in the source (one transaction); how many."""
        view = self._with_hashes(current)
        try:
            (gone,) = self.con.execute(
                f"SELECT count(*) FROM {self.docs} WHERE h NOT IN (SELECT h FROM {view})"
            ).fetchall()[0]
            if gone:
                self.con.execute("BEGIN TRANSACTION")
                try:
                    for table in (self.terms, self.docs):
                        self.con.execute(
                            f"DELETE FROM {table} WHERE h NOT IN (SELECT h FROM {view})"
                        )
                    self.con.execute("COMMIT")
                except BaseException:
                    self.con.execute("ROLLBACK")
                    raise
        finally:
            self.con.unregister(view)
        return gone

    def count(self) -> int:
        return self.con.execute(f"SELECT count(*) FROM {self.docs}").fetchall()[0][0]

    def search(
        self, queries: list[str], collection: set[str], depth: int
    ) -> list[list[tuple[str, float]]]:
        """Per query, the ``depth`` best (hash, score) of the rows in ``collection``,
        best first (ties by hash, so the order never depends on the table's order)."""
        qterms = [(i, t) for i, q in enumerate(queries) for t in sorted(set(tokens(q)))]
        out: list[list[tuple[str, float]]] = [[] for _ in queries]
        if not qterms or not collection:
            return out
        view = self._with_hashes(collection)
        qview = f"__semql_q_{uuid.uuid4().hex[:8]}"
        qi, qt = zip(*qterms, strict=True)
        self.con.register(
            qview, pa.table({"qid": pa.array(qi, pa.int64()), "term": pa.array(qt, pa.string())})
        )
        try:
            rows = self.con.execute(
                f"""
                WITH coll AS (SELECT d.h, d.len FROM {self.docs} d JOIN {view} USING (h)),
                stats AS (SELECT count(*) AS n, avg(len) AS avgdl FROM coll),
                hits AS (
                    SELECT t.h, t.term, t.tf FROM {self.terms} t
                    JOIN coll USING (h) WHERE t.term IN (SELECT term FROM {qview})
                ),
                df AS (SELECT term, count(*) AS df FROM hits GROUP BY term),
                scored AS (
                    SELECT q.qid, h.h,
                        sum(ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5))
                            * h.tf * ({K1} + 1)
                            / (h.tf + {K1} * (1 - {B} + {B} * c.len / greatest(s.avgdl, 1))))
                            AS score
                    FROM {qview} q JOIN hits h USING (term) JOIN df USING (term)
                    JOIN coll c ON c.h = h.h, stats s
                    GROUP BY q.qid, h.h
                )
                SELECT qid, h, score FROM scored
                QUALIFY row_number() OVER (PARTITION BY qid ORDER BY score DESC, h) <= {depth}
                ORDER BY qid, score DESC, h
                """
            ).fetchall()
        finally:
            self.con.unregister(view)
            self.con.unregister(qview)
        for qid, h, score in rows:
            out[qid].append((h, float(score)))
        return out
