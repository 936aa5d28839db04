"""What a first build of an index costs per row: MiniLM and GGUF embeddings, BM25 terms.

EXPLAIN prices a retrieval index's first build (planner/retrieval.py) and the embedding
of a table for a proxy model from these rates. Measured on the shipped sample reviews
(--rows of them; the GGUF embedder, which is far slower, on --gguf-rows), each after a
warm-up batch, in one run on this machine; the BM25 build inserts into an in-memory
DuckDB as retrieval does.

    python bench/embed_rate.py --out bench/results/embeddings
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import time
from pathlib import Path

import duckdb

from semql.executors.proxy.embeddings import GGUFEmbedder, MiniLMEmbedder
from semql.executors.retrieval.bm25 import Bm25Index
from semql.executors.runtimes.cpu_backend import cpu_model
from semql.executors.runtimes.model_files import default_model_path
from semql.sample import sample_dir


def _rate(embed, texts: list[str]) -> float:
    embed(texts[:16])  # warm-up: weights paged in, threads started
    started = time.perf_counter()
    embed(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--gguf-rows", type=int, default=60)
    ap.add_argument("--out", default="bench/results/embeddings")
    args = ap.parse_args()
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        texts = [r["reviewText"] for r in csv.DictReader(f)][: args.rows]
    rates = {"minilm": _rate(MiniLMEmbedder().embed, texts)}
    rates["gguf (bundled Gemma 3 270M)"] = _rate(
        GGUFEmbedder(default_model_path()).embed, texts[: args.gguf_rows]
    )
    index = Bm25Index(duckdb.connect(":memory:"), "bench")
    docs = {hashlib.sha1(t.encode()).hexdigest(): t for t in texts}
    started = time.perf_counter()
    index.build(docs)
    rates["bm25"] = len(docs) / (time.perf_counter() - started)
    meta = {"cpu": cpu_model(), "cores": os.cpu_count(), "rows": len(texts)}
    meta["gguf_rows"] = args.gguf_rows
    lines = [
        f"# Index build rates ({meta['cpu']}, {meta['cores']} cores)\n",
        f"Sample reviews: {len(texts)} (GGUF: {args.gguf_rows}), one run after a warm-up.\n",
        "| what | rows/s |",
        "|---|---|",
        *[f"| {name} | {rate:.1f} |" for name, rate in rates.items()],
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"embed-rate-{stamp}.json").write_text(json.dumps({**meta, "rows_per_s": rates}))
    (out / f"embed-rate-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
