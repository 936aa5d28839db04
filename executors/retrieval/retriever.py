"""Exact top-k retrieval for an LM call's context (planner/retrieval.py).

A call's collection is its context subquery's rows, each rendered as the line an LLMQA
context shows (`` | ``-joined values) and keyed by the hash of that line. Its indexes
(an embedding view, a BM25 index) are built over the index's rows on first use, from
then on only for rows that are new or changed, and rows gone from the source are
dropped; both live in the database (executors/proxy/embedding_views.py, bm25.py).

Search is exact and over the collection only: embeddings by cosine similarity (one
matrix product), BM25 by DuckDB, hybrid by reciprocal-rank fusion of the two
(Cormack et al. 2009, constant 60; nothing tuned). Ties are broken by the row's hash,
so the rows retrieved never depend on the order a subquery returned them in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from semql.errors import BindError
from semql.planner.physical.prompt_format import (
    MAX_FIELD_CHARS,
    clean_value,
    context_text,
    row_line,
)

from ..lm.stats import OperatorStats
from ..proxy.embedding_views import EmbeddingStore, text_hash
from ..proxy.embeddings import Embedder
from .bm25 import Bm25Index

Fetch = Callable[[str], tuple[list[str], list[tuple]]]
Progress = Callable[[OperatorStats, int, int], None]
RRF_K = 60
FUSION_DEPTH = 50  # each method's list fused: the best 50 (or 4k) rows
MAX_COLLECTION_ROWS = 1_000_000


class Retrieving(Protocol):
    """What retrieval reads of an LM call (the physical plan's stages carry the call):
    ``retrieval`` is its spec (planner/retrieval.py: source_sql, index_sql, method, k)."""

    id: int
    label: str
    question: str
    retrieval: object


@dataclass(frozen=True)
class RowContext:
    """What one row retrieved: the context field's text, and the values of the rows in
    it (an ``options=`` answer may be narrowed to the options among them)."""

    text: str
    cells: frozenset[str]


@dataclass
class Collection:
    """The rows one call searches, and what was done to its indexes this time."""

    names: list[str]
    lines: list[str]  # one per distinct row text, in hash order
    cells: list[frozenset[str]]  # each row's values, as prompts show them
    hashes: list[str]
    vectors: np.ndarray | None  # (rows, dim) where the method uses embeddings
    bm25: Bm25Index | None
    report: str


class Retriever:
    """Retrieval for the calls of one query (collections are built once per call)."""

    def __init__(
        self,
        fetch: Fetch,
        store: EmbeddingStore,
        embedder: Embedder,
        default_method: str,
        progress: Progress | None = None,
        check: Callable[[], None] | None = None,
    ):
        self.fetch = fetch
        self.check = check  # the query's caps, before each batch of an index build
        self.store = store
        self.embedder = embedder
        self.default_method = default_method
        self.progress = progress
        self._collections: dict[int, Collection] = {}
        self.warnings: list[str] = []

    def method(self, call: Retrieving) -> str:
        return call.retrieval.method or self.default_method

    # -- indexes -----------------------------------------------------------------------

    def _rows(self, sql: str, label: str) -> tuple[list[str], dict[str, tuple[str, tuple]]]:
        """The query's column names, and hash -> (rendered line, values) per distinct line."""
        names, rows = self.fetch(f"SELECT * FROM ({sql}) LIMIT {MAX_COLLECTION_ROWS + 1}")
        if len(rows) > MAX_COLLECTION_ROWS:
            raise BindError(f"{label}: the context to search has over {MAX_COLLECTION_ROWS} rows")
        found = {}
        for row in rows:
            line = row_line(row)
            found[text_hash(line)] = (line, row)
        return names, found

    def collection(self, call: Retrieving) -> Collection:
        if call.id in self._collections:
            return self._collections[call.id]
        r, method = call.retrieval, self.method(call)
        names, rows = self._rows(r.source_sql, call.label)
        if r.index_sql != r.source_sql:
            index_names, index_rows = self._rows(r.index_sql, call.label)
        else:
            index_names, index_rows = names, rows
        index_lines = {h: line for h, (line, _) in index_rows.items()}
        key = f"retrieval\x00{r.index_sql}"
        started = time.perf_counter()
        built: list[str] = []
        vectors = bm25 = None
        hashes = sorted(rows)
        if method in ("embedding", "hybrid"):
            view = self.store.view(key, index_names, self.embedder)
            stored, embedded, _ = self.store.embed(
                view,
                index_lines,
                self.embedder,
                self._progress(f"embedding index of {call.label}"),
                self.check,
            )
            self.store.refresh(view, set(index_lines))
            vectors = np.vstack([stored[h] for h in hashes]) if hashes else None
            built.append(f"{embedded} rows embedded ({self.embedder.id}, view {view})")
        if method in ("bm25", "hybrid"):
            bm25 = Bm25Index(self.store.con, "\x00".join([key, *index_names]))
            indexed = bm25.build(
                index_lines, self._progress(f"BM25 index of {call.label}"), self.check
            )
            bm25.refresh(set(index_lines))
            built.append(f"{indexed} rows indexed for BM25 ({bm25.name})")
        seconds = time.perf_counter() - started
        report = (
            f"retrieval: top {r.k} of {len(hashes)} rows by {method}; index of "
            f"{len(index_lines)} rows: {', '.join(built)} in {seconds:.1f}s"
        )
        found = Collection(
            names,
            [rows[h][0] for h in hashes],
            [frozenset(clean_value(v) for v in rows[h][1]) for h in hashes],
            hashes,
            vectors,
            bm25,
            report,
        )
        self._collections[call.id] = found
        return found

    def _progress(self, what: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        op = OperatorStats(what)
        return lambda done, total: self.progress(op, done, total)

    # -- search ------------------------------------------------------------------------

    def top_k(self, call: Retrieving, queries: list[str]) -> list[list[int]]:
        """Per query text, the positions (in the collection) of its k most relevant rows."""
        coll, method, k = self.collection(call), self.method(call), call.retrieval.k
        n = len(coll.hashes)
        if not n or not queries:
            return [[] for _ in queries]
        depth = min(n, max(FUSION_DEPTH, 4 * k))
        order: list[list[int]] = []
        if method == "bm25":
            ranked = self._bm25(coll, queries, depth)
            return [self._fill(r[:k], k, n) for r in ranked]
        sims = self._query_vectors(call, queries) @ coll.vectors.T
        tie = np.arange(n)  # hashes are sorted: position order is hash order
        emb = [list(np.lexsort((tie, -s))) for s in sims]
        if method == "embedding":
            return [[int(i) for i in e[:k]] for e in emb]
        for e, b in zip(emb, self._bm25(coll, queries, depth), strict=True):
            score: dict[int, float] = {}
            for ranking in (e[:depth], b):
                for rank, i in enumerate(ranking):
                    score[int(i)] = score.get(int(i), 0.0) + 1.0 / (RRF_K + rank + 1)
            order.append(sorted(score, key=lambda i: (-score[i], i))[:k])
        return order

    @staticmethod
    def _fill(found: list[int], k: int, n: int) -> list[int]:
        """BM25 scores only rows sharing a word with the query; the rest follow in hash
        order, so k rows come back whenever the collection has k."""
        rest = (i for i in range(n) if i not in set(found))
        return found + [next(rest) for _ in range(min(k, n) - len(found))]

    def _bm25(self, coll: Collection, queries: list[str], depth: int) -> list[list[int]]:
        position = {h: i for i, h in enumerate(coll.hashes)}
        hits = coll.bm25.search(queries, set(coll.hashes), depth)
        return [[position[h] for h, _ in hit] for hit in hits]

    def _query_vectors(self, call: Retrieving, queries: list[str]) -> np.ndarray:
        """Query embeddings, kept in an embedding view of their own (a re-run of the same
        rows embeds nothing)."""
        view = self.store.view("retrieval queries", ["query"], self.embedder)
        texts = {text_hash(q): q for q in queries}
        stored, _, _ = self.store.embed(view, texts, self.embedder, check=self.check)
        return np.vstack([stored[text_hash(q)] for q in queries])

    # -- what the prompt gets ----------------------------------------------------------

    def contexts(self, call: Retrieving, values: list[tuple]) -> list[RowContext | None]:
        """Each LLMMap row's context: the header and its k most relevant rows, as many as
        fit a field's length (whole rows; a cut is reported). None for an all-NULL row."""
        coll = self.collection(call)
        asked = [i for i, v in enumerate(values) if not all(x is None for x in v)]
        queries = [" ".join(clean_value(x) for x in values[i] if x is not None) for i in asked]
        found = dict(zip(asked, self.top_k(call, queries), strict=True))
        out: list[RowContext | None] = [None] * len(values)
        cut = 0
        header = " | ".join(coll.names)
        for i, rows in found.items():
            lines = [header] + [coll.lines[j] for j in rows]
            while len(lines) > 2 and len(context_text(lines)) > MAX_FIELD_CHARS:
                lines.pop()
            kept = rows[: len(lines) - 1]
            cut += len(kept) < len(rows)
            cells = frozenset().union(*(coll.cells[j] for j in kept))
            out[i] = RowContext(context_text(lines), cells)
        if cut:
            self.warnings.append(
                f"{call.label}: the retrieved context of {cut} row(s) kept fewer than "
                f"k={call.retrieval.k} rows to fit {MAX_FIELD_CHARS} characters"
            )
        return out

    def lines(self, call: Retrieving) -> tuple[list[str], RowContext]:
        """An LLMQA context: the header and the k rows most relevant to the question
        (and what they hold, to narrow its options)."""
        coll = self.collection(call)
        (rows,) = self.top_k(call, [call.question])
        lines = [" | ".join(coll.names)] + [coll.lines[j] for j in rows]
        cells = frozenset().union(*(coll.cells[j] for j in rows))
        return lines, RowContext(context_text(lines), cells)

    def report(self, call: Retrieving) -> str:
        return self.collection(call).report
