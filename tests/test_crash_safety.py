"""Crash safety with real processes: SIGKILL in the middle of an LM query that writes the
result cache, in the middle of building an embedding view, and while a retrieval query
builds its embedding or BM25 index. On restart the database
opens, the user's table is unchanged, the cache and the view hold only whole batches,
and a re-run finishes, paying only for what was lost."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

import semql
from semql.executors.lm.lm_executor import CACHE_FLUSH_ROWS
from semql.executors.proxy.embedding_views import EmbeddingStore
from semql.executors.proxy.embeddings import LEXICAL_DIM, LexicalEmbedder

TESTS = Path(__file__).parent
ROWS = 400


def make_db(path: Path, rows: int = ROWS) -> str:
    con = duckdb.connect(str(path))
    frame = pl.DataFrame(
        {"id": list(range(rows)), "txt": [f"review {i}: a good movie" for i in range(rows)]}
    )
    con.register("frame", frame)
    con.execute("CREATE TABLE r AS SELECT * FROM frame")
    digest = digest_of(con)
    con.close()
    return digest


def digest_of(con) -> str:
    rows = con.execute("SELECT * FROM r ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def kill_after(mode: str, db: Path, rows: int, mid_batch: bool = False) -> None:
    """Start the worker, SIGKILL it once it reports ``rows`` rows done (``mid_batch``:
    at its next report of being inside a batch's write)."""
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "crash_worker.py"), mode, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=TESTS,
    )
    try:
        for line in proc.stdout:
            if line.startswith("row ") and int(line.split()[1]) >= rows:
                if not mid_batch:
                    break
                rows = 0
            if mid_batch and rows == 0 and line.strip() == "mid-batch":
                break
            assert line.strip() != "done", "the worker finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["ctas", "insert"])
def test_sigkill_during_a_write_with_lm_calls_leaves_the_users_tables_whole(tmp_path, mode):
    """CREATE TABLE ... AS and INSERT ... SELECT with LM calls, killed halfway: the new
    table does not exist, the table inserted into holds exactly its old rows, and a
    re-run completes the write from the cached answers."""
    from fake_lm import FakeLM

    db = tmp_path / "db.duckdb"
    before = make_db(db)
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE kept AS SELECT -1 AS id, TRUE AS ok")
    kill_after(mode, db, 100)
    lm = FakeLM()
    con = semql.connect(str(db), runtime=lm, cache=True)
    assert digest_of(con.duckdb) == before
    assert "answers" not in con.tables()
    assert con.query("SELECT id FROM kept").rows() == [(-1,)]
    query = "SELECT id, {{LLMMap('Is it good?', txt, return_type='bool')}} AS ok FROM r"
    con.query(f"CREATE TABLE answers AS {query}" if mode == "ctas" else f"INSERT INTO kept {query}")
    table = "answers" if mode == "ctas" else "kept"
    assert con.query(f"SELECT count(*) FROM {table} WHERE id >= 0").item() == ROWS
    assert len(lm.prompts) < ROWS  # the answers given before the kill were kept
    con.close()


def test_sigkill_during_an_lm_query_keeps_whole_cache_batches(tmp_path):
    from fake_lm import FakeLM

    db = tmp_path / "db.duckdb"
    before = make_db(db)
    kill_after("cache", db, 100)
    lm = FakeLM()
    con = semql.connect(str(db), runtime=lm, cache=True)  # opens: the WAL is replayed
    assert digest_of(con.duckdb) == before
    cached = con.duckdb.execute("SELECT output FROM semql_cache.lm_results").fetchall()
    assert len(cached) >= 96 and len(cached) % CACHE_FLUSH_ROWS == 0
    assert {o for (o,) in cached} <= {" yes", " no"}
    got = con.query("SELECT id, {{LLMMap('Is it good?', txt, return_type='bool')}} AS ok FROM r")
    assert got.height == ROWS and got["ok"].null_count() == 0
    assert len(lm.prompts) == ROWS - len(cached)  # only what the crash lost
    con.close()


def test_sigkill_while_building_an_embedding_view_keeps_whole_batches(tmp_path):
    db = tmp_path / "db.duckdb"
    before = make_db(db)
    kill_after("embed", db, 300)
    con = duckdb.connect(str(db))
    assert digest_of(con) == before
    store, emb = EmbeddingStore(con), LexicalEmbedder()
    view = store.view("SELECT txt FROM r", ["txt"], emb)
    stored = store.count(view)
    assert stored >= 256 and stored % 64 == 0
    (dims,) = con.execute(f"SELECT DISTINCT len(v) FROM {view}").fetchall()
    assert dims == (LEXICAL_DIM,)
    texts = {f"h{i}": f"review text number {i}" for i in range(1000)}
    _, fresh, _ = store.embed(view, texts, emb)
    assert fresh == 1000 - stored and store.count(view) == 1000
    con.close()


INDEX_ROWS = 2000


def index_tables(con, method: str) -> dict[str, int]:
    """Row counts of the stored index tables of one kind: the embedding view of r's rows
    (the largest in semql_embed; the question's own view is beside it), or BM25's
    documents table."""
    schema, suffix = ("semql_embed", "") if method == "embedding" else ("semql_index", "_docs")
    names = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        f"WHERE schema_name = '{schema}' AND table_name LIKE '%{suffix}'"
    ).fetchall()
    return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}


@pytest.mark.parametrize("method", ["embedding", "bm25"])
def test_sigkill_while_a_query_builds_its_retrieval_index(tmp_path, method):
    """A process killed while its first retrieval query builds the index: the file opens,
    the index holds whole batches only (BM25: no terms without their document), and the
    next query finishes it and puts in the prompt exactly what an unbroken build does."""
    from crash_worker import RETRIEVAL_QUERY

    from semql.executors.proxy.embedding_views import BATCH_ROWS as EMBED_BATCH
    from semql.executors.retrieval.bm25 import BATCH_ROWS as BM25_BATCH

    from fake_lm import FakeLM

    batch = EMBED_BATCH if method == "embedding" else BM25_BATCH
    db, fresh = tmp_path / "db.duckdb", tmp_path / "fresh.duckdb"
    before = make_db(db, INDEX_ROWS)
    make_db(fresh, INDEX_ROWS)
    kill_after(f"index-{method}", db, 2 * batch, mid_batch=method == "bm25")
    con = semql.connect(str(db), runtime=(lm := FakeLM()), cache=False, embedder="lexical")
    assert digest_of(con.duckdb) == before
    stored = max(index_tables(con.duckdb, method).values())
    assert 2 * batch <= stored < INDEX_ROWS and stored % batch == 0
    if method == "bm25":
        (docs,) = index_tables(con.duckdb, method)
        orphans = con.duckdb.execute(
            f"SELECT count(*) FROM {docs.replace('_docs', '_terms')} "
            f"WHERE h NOT IN (SELECT h FROM {docs})"
        ).fetchone()[0]
        assert orphans == 0
    sql = RETRIEVAL_QUERY.replace("{method}", method)
    con.query(sql)
    assert max(index_tables(con.duckdb, method).values()) == INDEX_ROWS
    unbroken = semql.connect(str(fresh), runtime=(ref := FakeLM()), cache=False, embedder="lexical")
    unbroken.query(sql)
    assert lm.prompts == ref.prompts and "review 7" in lm.prompts[0]
    con.close()
    unbroken.close()


def test_a_second_process_gets_a_clear_error_while_the_file_is_in_use(tmp_path):
    db = tmp_path / "db.duckdb"
    make_db(db)
    holder = semql.connect(str(db), cache=True)  # this process writes
    code = (
        "import semql, sys\n"
        "try:\n"
        f"    semql.connect({str(db)!r})\n"
        "except semql.SemQLError as err:\n"
        "    print(err); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert f"cannot open database {db}" in done.stdout and "lock" in done.stdout.lower()
    holder.close()
    # once the writer is gone, two readers can share the file
    readers = [semql.connect(str(db), read_only=True, cache=False) for _ in range(2)]
    assert all(r.query("SELECT count(*) AS n FROM r").item() == ROWS for r in readers)
    for r in readers:
        r.close()


@pytest.mark.parametrize("mode", ["cache", "index-bm25"])
def test_worker_finishes_when_not_killed(tmp_path, mode):
    """The worker really does the work the kill interrupts (guards the tests above)."""
    db = tmp_path / "db.duckdb"
    make_db(db)
    done = subprocess.run(
        [sys.executable, str(TESTS / "crash_worker.py"), mode, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("done"), done.stderr
