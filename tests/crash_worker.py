"""A process for the crash tests (test_crash_safety.py): it writes the result cache or an
embedding view of a database file slowly, printing its progress, until it is killed.

    python tests/crash_worker.py cache|ctas|insert|embed DB
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


class SlowEmbedder(LexicalEmbedder):
    def embed(self, texts):
        time.sleep(0.005 * len(texts))
        return super().embed(texts)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(mode: str, db: str) -> None:
    if mode in WRITES:
        con = semql.connect(db, runtime=FakeLM(seconds_per_call=0.01), cache=True)
        con.progress = lambda op, done, total: say(f"row {done}")
        con.query(WRITES[mode])
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
