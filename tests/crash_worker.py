"""A process for the crash tests (test_crash_safety.py): it writes the result cache, an
embedding view or a retrieval query's index (``index-embedding``, ``index-bm25``) of a
database file slowly, printing its progress, until it is killed.

    python tests/crash_worker.py cache|ctas|insert|embed|index-embedding|index-bm25 DB
"""

from __future__ import annotations

import sys
import time

import semql
from semql.executors.proxy.embedding_views import EmbeddingStore
from semql.executors.proxy.embeddings import LexicalEmbedder

from fake_lm import FakeLM

QUERY = "SELECT id, {{LLMMap('Is it good?', txt, return_type='bool')}} AS ok FROM r"
WRITES = {
    "cache": QUERY,
    "ctas": f"CREATE TABLE answers AS {QUERY}",
    "insert": f"INSERT INTO kept {QUERY}",
}
TEXTS = 1000
# a retrieval query whose first run builds the index of r's rows (tests/test_crash_safety.py)
RETRIEVAL_QUERY = (
    "SELECT {{LLMQA('What does review 7 say?', (SELECT id, txt FROM r), k=2, "
    "retrieval='{method}')}} AS a"
)


class SlowEmbedder(LexicalEmbedder):
    def embed(self, texts):
        time.sleep(0.005 * len(texts))
        return super().embed(texts)


def slow_index_builds() -> None:
    """Builds slowed so that a kill lands in the middle of one: embedding sleeps before
    each batch's write; BM25 sleeps inside each batch's transaction, between writing its
    terms and its documents, where a build without that transaction would leave terms of
    rows it never recorded."""
    from semql.executors.retrieval.bm25 import Bm25Index

    real_init, real_embed = Bm25Index.__init__, LexicalEmbedder.embed

    class SlowWrites:
        def __init__(self, con):
            self._con = con

        def executemany(self, sql, rows):
            done = self._con.executemany(sql, rows)
            if "_terms VALUES" in sql:
                say("mid-batch")  # a kill now lands inside the batch's transaction
                time.sleep(0.3)
            return done

        def __getattr__(self, name):
            return getattr(self._con, name)

    def slow_init(self, con, key):
        real_init(self, con, key)
        self.con = SlowWrites(self.con)

    Bm25Index.__init__ = slow_init
    LexicalEmbedder.embed = lambda self, texts: (
        time.sleep(0.002 * len(texts)),
        real_embed(self, texts),
    )[1]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(mode: str, db: str) -> None:
    if mode in WRITES:
        con = semql.connect(db, runtime=FakeLM(seconds_per_call=0.01), cache=True)
        con.progress = lambda op, done, total: say(f"row {done}")
        con.query(WRITES[mode])
    elif mode.startswith("index-"):
        method = mode.removeprefix("index-")
        slow_index_builds()
        con = semql.connect(db, runtime=FakeLM(), cache=False, embedder="lexical")
        con.progress = lambda op, done, total: say(f"row {done}")
        con.query(RETRIEVAL_QUERY.replace("{method}", method))
    else:
        import duckdb

        store = EmbeddingStore(duckdb.connect(db))
        emb = SlowEmbedder()
        view = store.view("SELECT txt FROM r", ["txt"], emb)
        texts = {f"h{i}": f"review text number {i}" for i in range(TEXTS)}
        store.embed(view, texts, emb, progress=lambda done, total: say(f"row {done}"))
    say("done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
