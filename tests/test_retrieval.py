"""Retrieval for LM calls (planner/retrieval.py, executors/retrieval/): what reaches the
prompt, the stored indexes' life cycle, and BM25 against a reference implementation.

The LM here is FakeLM (tests/fake_lm.py): these tests check which rows retrieval puts in
front of the model and what the index tables hold, not what a model answers;
bench/retrieval.py measures answers with the bundled model.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import polars as pl
import pytest

import semql
from semql.errors import BindError
from semql.executors.proxy.embeddings import LexicalEmbedder
from semql.executors.retrieval.bm25 import Bm25Index, tokens

from fake_lm import FakeLM

FACTS = 600
COLOURS = ["red", "green", "blue", "amber", "violet", "teal"]


def _facts(n: int = FACTS) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "txt": [
                f"sensor {i} reads {COLOURS[i % len(COLOURS)]} level {i * 7}" for i in range(n)
            ],
        }
    )


def _con(path=":memory:", **options) -> tuple[semql.Connection, FakeLM]:
    lm = FakeLM()
    con = semql.connect(path, runtime=lm, cache=False, embedder="lexical", **options)
    return con, lm


def _context_of(prompt: str) -> str:
    (line,) = [ln for ln in prompt.splitlines() if ln.startswith("context: ")]
    return line


def _ids_in(context: str) -> set[int]:
    return {int(m) for m in re.findall(r"(?:\"|; )(\d+) \|", context)}


@pytest.mark.parametrize("method", ["embedding", "bm25", "hybrid"])
def test_llmqa_sees_the_relevant_row_not_the_first_ones(method):
    con, lm = _con()
    con.register("facts", _facts())
    con.query(
        "SELECT {{LLMQA('What does sensor 517 read?', (SELECT id, txt FROM facts), "
        f"k=3, retrieval='{method}')}}}} AS a"
    )
    context = _context_of(lm.prompts[-1])
    assert "sensor 517 reads" in context  # row 517 of 600: past any first-rows window
    assert len(_ids_in(context)) == 3


@pytest.mark.parametrize("method", ["embedding", "bm25", "hybrid"])
def test_retrieval_never_leaves_the_subquery_filter(method):
    con, lm = _con()
    con.register("facts", _facts())
    con.register("q", pl.DataFrame({"t": ["sensor 517 level", "sensor 12 reads red", "teal"]}))
    con.query(
        "SELECT t, {{LLMMap('Which level?', q.t, context=(SELECT id, txt FROM facts "
        f"WHERE id % 2 = 1 AND id < 300), k=4, retrieval='{method}')}}}} AS a FROM q"
    )
    assert len(lm.prompts) == 3
    for prompt in lm.prompts:
        ids = _ids_in(_context_of(prompt))
        assert len(ids) == 4
        assert all(i % 2 == 1 and i < 300 for i in ids), ids  # 517 and 12 are excluded


def test_the_row_fields_choose_each_rows_context():
    con, lm = _con()
    con.register("facts", _facts())
    con.register("q", pl.DataFrame({"t": ["sensor 101 reads", "sensor 444 reads"]}))
    con.query(
        "SELECT {{LLMMap('Which level?', q.t, context=(SELECT id, txt FROM facts), k=1)}} "
        "AS a FROM q"
    )
    got = {_context_of(p).split("; ")[1].split(" |")[0] for p in lm.prompts}
    assert got == {"101", "444"}


def test_without_k_each_row_gets_its_most_relevant_row_only():
    """The default k is 1: on the measured tasks (bench/retrieval_k.py) the bundled model
    answered best from the single most relevant row."""
    con, lm = _con()
    con.register("facts", _facts())
    con.register("q", pl.DataFrame({"t": ["sensor 101 reads", "sensor 444 reads"]}))
    con.query("SELECT {{LLMMap('Which level?', q.t, context=(SELECT id, txt FROM facts))}} FROM q")
    assert [len(_ids_in(_context_of(p))) for p in lm.prompts] == [1, 1]
    assert "top 1 rows by hybrid relevance" in con.explain(
        "SELECT {{LLMMap('Which level?', q.t, context=(SELECT id, txt FROM facts))}} FROM q"
    )


def _stored(con, schema_like: str) -> dict[str, int]:
    """Row counts of the index tables of one kind (view name -> rows)."""
    db = con.duckdb
    names = db.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        f"WHERE schema_name = '{schema_like}'"
    ).fetchall()
    return {n: db.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0] for (n,) in names}


QA = "SELECT {{LLMQA('What does sensor 5 read?', (SELECT id, txt FROM facts{where}), k=2)}} AS a"


def test_index_is_stored_reused_and_refreshed(tmp_path, monkeypatch):
    embedded: list[str] = []
    real = LexicalEmbedder.embed

    def counting(self, texts):
        embedded.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(LexicalEmbedder, "embed", counting)
    path = tmp_path / "db.duckdb"
    con, _ = _con(path)
    con.duckdb.register("_facts_df", _facts(50).to_arrow())
    con.duckdb.execute("CREATE TABLE facts AS SELECT * FROM _facts_df")
    con.query(QA.format(where=""))
    assert len(embedded) == 51  # the 50 rows and the question
    con.close()

    con, _ = _con(path)  # a new session on the same file
    embedded.clear()
    con.query(QA.format(where=" WHERE id < 10"))  # another filter shares the index
    assert embedded == []  # nothing embedded again, the question neither
    docs = [v for k, v in _stored(con, "semql_index").items() if k.endswith("_docs")]
    assert docs == [50]

    con.duckdb.execute("INSERT INTO facts VALUES (50, 'sensor 50 reads new things')")
    con.duckdb.execute("UPDATE facts SET txt = 'sensor 5 reads changed' WHERE id = 5")
    con.query(QA.format(where=""))
    assert sorted(embedded) == ["5 | sensor 5 reads changed", "50 | sensor 50 reads new things"]
    views = _stored(con, "semql_embed")
    assert 51 in views.values()  # the old text of row 5 was dropped, the new ones added
    docs = [v for k, v in _stored(con, "semql_index").items() if k.endswith("_docs")]
    assert docs == [51]
    con.close()


def test_a_build_killed_midway_leaves_whole_rows_and_finishes_on_the_next_run(
    tmp_path, monkeypatch
):
    path = tmp_path / "db.duckdb"
    con, _ = _con(path, retrieval="bm25")
    con.duckdb.register("_facts_df", _facts(1500).to_arrow())
    con.duckdb.execute("CREATE TABLE facts AS SELECT * FROM _facts_df")
    real_init = Bm25Index.__init__

    class Dying:
        """The index's connection, killed as the second batch writes its documents
        (after that batch's terms)."""

        def __init__(self, con):
            self._con, self._docs = con, 0

        def executemany(self, sql, rows):
            if "_docs VALUES" in sql:
                self._docs += 1
                if self._docs == 2:
                    raise KeyboardInterrupt
            return self._con.executemany(sql, rows)

        def __getattr__(self, name):
            return getattr(self._con, name)

    def dying_init(self, con, key):
        real_init(self, con, key)
        self.con = Dying(con)

    monkeypatch.setattr(Bm25Index, "__init__", dying_init)
    with pytest.raises(KeyboardInterrupt):
        con.query(QA.format(where=""))
    db = con.duckdb
    (docs,) = [k for k in _stored(con, "semql_index") if k.endswith("_docs")]
    terms = docs.replace("_docs", "_terms")
    assert db.execute(f"SELECT count(*) FROM {docs}").fetchall()[0][0] == 512
    orphans = db.execute(
        f"SELECT count(*) FROM {terms} WHERE h NOT IN (SELECT h FROM {docs})"
    ).fetchall()[0][0]
    assert orphans == 0  # no terms of a row without its document entry
    monkeypatch.setattr(Bm25Index, "__init__", real_init)
    con.query(QA.format(where=""))
    assert db.execute(f"SELECT count(*) FROM {docs}").fetchall()[0][0] == 1500
    con.close()


def _reference_bm25(docs: dict[str, str], query: str) -> dict[str, float]:
    """Okapi BM25 (k1 1.2, b 0.75, Lucene's idf) written out directly."""
    toks = {h: tokens(t) for h, t in docs.items()}
    n, avgdl = len(docs), sum(len(t) for t in toks.values()) / len(docs)
    scores = {}
    for h, words in toks.items():
        tf = Counter(words)
        score = 0.0
        for term in set(tokens(query)):
            df = sum(term in w for w in toks.values())
            if tf[term]:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += (
                    idf * tf[term] * 2.2 / (tf[term] + 1.2 * (0.25 + 0.75 * len(words) / avgdl))
                )
        if score:
            scores[h] = score
    return scores


def test_bm25_scores_equal_a_reference_implementation():
    import duckdb

    docs = {
        f"h{i}": text
        for i, text in enumerate(
            [
                "The quick brown fox jumps over the lazy dog",
                "A fox and a fox and another fox",
                "Dogs are loyal; the dog waits",
                "Nothing about animals here at all",
                "brown bears and brown dogs",
            ]
        )
    }
    index = Bm25Index(duckdb.connect(), "test")
    assert index.build(docs) == 5
    assert index.build(docs) == 0  # stored rows are not indexed again
    for query in ["brown fox", "dog", "loyal animals", "zebra"]:
        for subset in [set(docs), {"h0", "h2", "h4"}]:
            (got,) = index.search([query], subset, depth=10)
            want = _reference_bm25({h: docs[h] for h in subset}, query)
            assert [h for h, _ in got] == sorted(want, key=lambda h: (-want[h], h))
            for h, score in got:
                assert score == pytest.approx(want[h], rel=1e-9)


def test_explain_shows_retrieval_its_index_and_k():
    con, _ = _con()
    con.register("facts", _facts())
    text = con.explain(QA.format(where=" WHERE id > 3"))
    assert "top 2 rows by hybrid relevance from (SELECT id, txt FROM facts WHERE id > 3)" in text
    # the index covers the rows without the WHERE
    assert "retrieval index over (SELECT id, txt FROM facts): 600 rows" in text
    con.register("q", pl.DataFrame({"t": ["a"]}))
    text = con.explain(
        "SELECT {{LLMMap('x?', q.t, context=(SELECT txt FROM facts), k=5, "
        "retrieval='bm25')}} FROM q"
    )
    assert "top 5 rows by bm25 relevance" in text
    assert "retrieval index over (SELECT txt FROM facts): 600 rows" in text


@pytest.mark.parametrize(
    "call, message",
    [
        ("LLMMap('q', q.t, k=3)", "need context="),
        ("LLMMap('q', q.t, context=(SELECT txt FROM facts), k=0)", "k= must be"),
        ("LLMMap('q', q.t, context=(SELECT txt FROM facts), retrieval='vector')", "retrieval="),
        ("LLMQA('q', 'some text', k=2)", "searches one subquery"),
        ("LLMMap('q', q.t, context='text')", "searches one subquery"),
    ],
)
def test_retrieval_arguments_are_checked(call, message):
    con, _ = _con()
    con.register("facts", _facts(5))
    con.register("q", pl.DataFrame({"t": ["a"]}))
    with pytest.raises(BindError, match=message):
        con.query(f"SELECT {{{{{call}}}}} FROM q")


def test_naive_and_optimized_plans_give_the_same_answers():
    con, _ = _con()
    con.register("facts", _facts())
    con.register(
        "q", pl.DataFrame({"t": ["sensor 9 reads", "sensor 9 reads", "sensor 77 teal", None]})
    )
    sql = (
        "SELECT t, {{LLMMap('Which level?', q.t, context=(SELECT id, txt FROM facts), k=2)}} "
        "AS a FROM q ORDER BY t"
    )
    assert con.query(sql).equals(con.query(sql, optimize=False))


class TypeRecordingLM(FakeLM):
    """FakeLM that keeps the output type of each call (planner-logic tests only)."""

    def __init__(self):
        super().__init__()
        self.types = []

    def generate(self, prompt, out_type):
        self.types.append(out_type)
        return super().generate(prompt, out_type)


def test_options_narrow_to_those_the_retrieved_rows_name():
    lm = TypeRecordingLM()
    con = semql.connect(runtime=lm, cache=False, embedder="lexical")
    con.register("facts", _facts(40))
    con.register("q", pl.DataFrame({"t": ["sensor 12 reads", "sensor 31 reads", "nothing"]}))
    frame = con.query(
        "SELECT t, {{LLMMap('Which sensor?', q.t, context=(SELECT txt FROM facts), k=2, "
        "options=(SELECT txt FROM facts))}} AS a FROM q ORDER BY t"
    )
    assert len(lm.types) == 3
    for prompt, out_type in zip(lm.prompts, lm.types, strict=True):
        named = {line.split(" | ")[0] for line in _context_of(prompt)[10:-1].split("; ")[1:]}
        assert set(out_type.labels()) == named  # the k retrieved rows' options, no others
    assert set(frame["a"]) <= set(_facts(40)["txt"])
    # options that are not values of the context stay whole
    lm.types.clear()
    con.query(
        "SELECT {{LLMMap('Which colour?', q.t, context=(SELECT txt FROM facts), k=2, "
        "options=('hot', 'cold'))}} AS a FROM q"
    )
    assert all(t.labels() == ["hot", "cold"] for t in lm.types)


def test_llmqa_options_narrow_to_the_retrieved_rows():
    lm = TypeRecordingLM()
    con = semql.connect(runtime=lm, cache=False, embedder="lexical")
    con.register("facts", _facts(40))
    con.query(
        "SELECT {{LLMQA('What does sensor 17 read?', (SELECT txt FROM facts), k=2, "
        "options=(SELECT txt FROM facts))}} AS a"
    )
    (out_type,) = lm.types
    named = {line for line in _context_of(lm.prompts[-1])[10:-1].split("; ")[1:]}
    assert set(out_type.labels()) == named and len(named) == 2


@pytest.mark.parametrize(
    "sql, shared",
    [
        ("SELECT fact FROM Facts WHERE id > 3", "SELECT fact FROM Facts"),
        # a CTE's own WHERE is part of the rows: the subquery is indexed as written
        ("WITH f AS (SELECT fact FROM Facts WHERE id > 3) SELECT fact FROM f WHERE 1 = 1", None),
    ],
)
def test_index_covers_the_unfiltered_table_only_for_a_plain_subquery(sql, shared):
    import sqlglot

    from semql.planner.retrieval import Retrieval

    source = sqlglot.parse_one(sql, read="duckdb")
    retrieval = Retrieval(source=source, k=3, method=None)
    assert retrieval.index_sql == (shared or retrieval.source_sql)


def test_build_note_prices_the_index_the_method_builds():
    import sqlglot

    from semql.planner.retrieval import BUILD_ROWS_PER_SECOND, Retrieval

    source = sqlglot.parse_one("SELECT fact FROM Facts", read="duckdb")
    rows = 10_000
    bm25 = Retrieval(source=source, k=3, method="bm25").build_note(rows, "hybrid")
    hybrid = Retrieval(source=source, k=3, method=None).build_note(rows, "hybrid")
    assert "MiniLM" not in bm25 and f"about {rows / BUILD_ROWS_PER_SECOND['bm25']:.0f}s" in bm25
    both = rows / BUILD_ROWS_PER_SECOND["bm25"] + rows / BUILD_ROWS_PER_SECOND["embedding"]
    assert "MiniLM" in hybrid and f"about {both:.0f}s" in hybrid


def test_max_seconds_stops_an_index_build_between_whole_batches(monkeypatch, tmp_path):
    """The cap reaches the build itself (not only the LM calls after it); what was
    stored stays whole, and the next query embeds only the rest."""
    import time

    from semql import LimitExceeded
    from semql.executors.proxy.embedding_views import BATCH_ROWS

    embedded: list[str] = []
    real = LexicalEmbedder.embed

    def slow(self, texts):  # 10 batches of the 600 rows take 2 s, far past the cap
        time.sleep(0.2)
        embedded.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(LexicalEmbedder, "embed", slow)
    con, lm = _con(tmp_path / "db.duckdb")  # a file: the index is stored in it
    con.register("facts", _facts())
    sql = QA.format(where="").replace("k=2", "k=2, retrieval='embedding'")
    with pytest.raises(LimitExceeded, match="max_seconds"):
        con.query(sql, max_seconds=0.5)
    stored = max(_stored(con, "semql_embed").values())  # the index (beside the questions)
    assert stored < FACTS and stored % BATCH_ROWS == 0 and lm.prompts == []
    embedded.clear()
    con.query(sql)
    assert len(embedded) == FACTS - stored + 1  # the rest, and the question


def test_max_seconds_stops_a_bm25_build_between_whole_batches(monkeypatch, tmp_path):
    import time

    from semql import LimitExceeded
    from semql.executors.retrieval import bm25

    real = bm25.tokens
    monkeypatch.setattr(bm25, "tokens", lambda text: (time.sleep(0.004), real(text))[1])
    con, _ = _con(tmp_path / "db.duckdb")
    con.register("facts", _facts())
    sql = QA.format(where="").replace("k=2", "k=2, retrieval='bm25'")
    with pytest.raises(LimitExceeded, match="max_seconds"):
        con.query(sql, max_seconds=0.5)
    docs = [v for k, v in _stored(con, "semql_index").items() if k.endswith("_docs")]
    assert docs in ([], [0], [bm25.BATCH_ROWS])
    con.query(sql)
    docs = [v for k, v in _stored(con, "semql_index").items() if k.endswith("_docs")]
    assert docs == [FACTS]
