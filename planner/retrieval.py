"""Retrieval for LM calls: the rows of a context table most relevant to the question.

``LLMQA('q', (SELECT ...), k=3)`` answers from the 3 rows of the subquery most relevant
to the question; ``LLMMap('q', r.text, context=(SELECT ...), k=3)`` gives each row the 3
rows most relevant to its own fields. Without retrieval, LLMQA keeps the first rows that
fit the window, so an answer in row 500 is never seen (seed 002's RAG queries).

Relevance (``retrieval=``): ``embedding`` (cosine similarity of stored embeddings),
``bm25`` (Okapi BM25 over a stored term index) or ``hybrid`` (their reciprocal-rank
fusion, the default: neither wins everywhere, and fusion needs no tuned weight). Search
is exact, over the subquery's own rows only, so a row its WHERE excludes is never
retrieved.

The index covers the subquery's rows without its WHERE when the subquery reads one
table without grouping (``SELECT cols FROM t WHERE ...``): every query over those
columns shares it, whatever its filter. Any other subquery is indexed as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from semql.errors import BindError

METHODS = ("hybrid", "embedding", "bm25")
# What a first build of an index costs per row, on 2 cores (bench/embed_rate.py,
# bench/results/embeddings/embed-rate-20261203-092838.md, AMD EPYC): MiniLM's embeddings,
# and BM25's term rows inserted into DuckDB. A hybrid index builds both.
BUILD_ROWS_PER_SECOND = {"embedding": 107.0, "bm25": 316.0}
# Without k=: one row. The bundled model answered best from the single most relevant row on
# all five tasks measured, "which row" and "what about it" alike (k=1 0.678, k=3 0.323, k=5
# 0.262 mean accuracy; bench/retrieval_k.py ->
# bench/results/retrieval/retrieval-k-20261203-132402.md).
DEFAULT_K = 1
MAX_K = 50


def method_value(value, what: str) -> str:
    if value not in METHODS:
        raise TypeError(f"{what} must be one of {', '.join(METHODS)}, got {value!r}")
    return value


def k_value(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise TypeError(f"{what} must be a whole number from 1 to {MAX_K}, got {value!r}")
    return value


@dataclass(eq=False)
class Retrieval:
    """What a call retrieves from: its context subquery, how many rows, and how."""

    source: exp.Select  # the context subquery as written (never changed)
    k: int
    method: str | None  # None: the connection's default (PlanOptions.retrieval)

    @property
    def source_sql(self) -> str:
        return self.source.sql(dialect="duckdb")

    @property
    def index_sql(self) -> str:
        """The rows the index covers: the source without its WHERE when that keeps it
        one table's rows (so queries with other filters share the index)."""
        select = self.source
        source = select.args.get("from_")
        simple = source is not None and isinstance(source.this, exp.Table)
        parts = ("joins", "group", "having", "distinct", "limit", "order", "with_", "qualify")
        shaped = not any(select.args.get(part) for part in parts)
        plain = not any(
            isinstance(n, (exp.AggFunc, exp.Window, exp.Subquery))
            for e in select.expressions
            for n in e.walk()
        )
        if simple and shaped and plain and select.args.get("where") is not None:
            unfiltered = select.copy()
            unfiltered.set("where", None)
            return unfiltered.sql(dialect="duckdb")
        return self.source_sql

    def size_sql(self) -> str:
        """Rows the index covers and their mean rendered length (for the cost model)."""
        return f"SELECT count(*), avg(length(CAST(__s AS VARCHAR))) FROM ({self.index_sql}) AS __s"

    def build_note(self, rows: int, default_method: str) -> str:
        """The index's rows and the seconds a first build of them takes by this method."""
        method = self.method or default_method
        kinds = ("embedding", "bm25") if method == "hybrid" else (method,)
        seconds = sum(rows / BUILD_ROWS_PER_SECOND[kind] for kind in kinds)
        what = {"embedding": "embeds them with MiniLM", "bm25": "indexes their terms"}
        return (
            f"retrieval index over ({self.index_sql}): {rows} rows; a first build "
            f"{' and '.join(what[k] for k in kinds)}, about {seconds:.0f}s (rows stored "
            "before are reused)"
        )

    def describe(self, default_method: str) -> str:
        method = self.method or default_method
        return f"top {self.k} rows by {method} relevance from ({self.source_sql})"


def bind_retrieval(fn: str, kwargs: dict, context: list[exp.Expression]) -> Retrieval | None:
    """The call's retrieval, from its ``context=``, ``k=`` and ``retrieval=`` (removed
    from ``kwargs``); None when it asks for none. LLMMap with ``context=`` always
    retrieves (a whole table in every row's prompt is never what is meant)."""
    k = kwargs.pop("k", None)
    method = kwargs.pop("retrieval", None)
    if fn == "LLMMap":
        if not context:
            if k is not None or method is not None:
                raise BindError(f"{fn}: k= and retrieval= need context=(SELECT ...) to search")
            return None
    elif k is None and method is None:
        return None
    subqueries = [c for c in context if isinstance(c, (exp.Subquery, exp.Select))]
    if len(subqueries) != 1 or len(context) != 1:
        raise BindError(
            f"{fn}: retrieval searches one subquery; give the context as "
            "(SELECT ... FROM ...), not text or several contexts"
        )
    (node,) = subqueries
    select = node.this if isinstance(node, exp.Subquery) else node
    if not isinstance(select, exp.Select):
        raise BindError(f"{fn}: the context to search must be a SELECT, got {node.sql()}")
    return Retrieval(select, DEFAULT_K if k is None else k, method)
