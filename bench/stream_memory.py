"""What the batched context's streams cost in memory, and that their size moves no answer.

The batched context (executors/runtimes/batch_scorer.py) allocates every stream's KV cells
up front: ``slots + 1`` streams of ``stream_tokens`` positions. Sized by the model's
context, that grew with ``n_ctx``; sized by ``STREAM_CELLS``, it does not, and a row too
long for a stream goes one row at a time. For the bundled Gemma 3 270M this reports:

- the resident memory the batched context adds (RSS before and after it is allocated,
  8 streams: a batched runtime's ``batch_rows``, a one-row runtime's ``step_rows``) at
  ``n_ctx`` 2048 and 8192, with streams of the whole context (before) and of
  ``STREAM_CELLS`` (now);
- for ``--rows`` sample reviews (one of them several reviews long), whether a batched
  runtime's bool scores and int and text answers, and a one-row runtime's shared-steps int
  and text answers, are the same bits with streams of the whole context and of
  ``STREAM_CELLS`` (every logits vector a token is chosen from, greedy.recording()).

    python bench/stream_memory.py --rows 24
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from results_file import write_results

from semql.executors.runtimes import batch_scorer, cpu_backend, greedy
from semql.executors.runtimes.cpu_backend import BATCH_ROWS
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar import types as T
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def streams_of_size(size: int | None) -> Iterator[None]:
    """Streams of ``size`` positions, padding aside (None: the shipped ``stream_tokens``)."""
    shipped = batch_scorer.stream_tokens
    if size is not None:
        batch_scorer.stream_tokens = lambda rt: size
    try:
        yield
    finally:
        batch_scorer.stream_tokens = shipped


def context_mb(n_ctx: int, batch_rows: int, size: int | None) -> float:
    rt = LlamaRuntime(default_model_path(), n_ctx=n_ctx, n_threads=2, batch_rows=batch_rows)
    try:
        rt.tokenize("warm")
        before = rss_mb()
        with streams_of_size(size):
            batch_scorer.streams_of(rt)
        return rss_mb() - before
    finally:
        rt.close()


def answers(batch_rows: int, size: int | None, texts: list[str]) -> dict:
    """Every number the rows' answers come from, with streams of ``size``."""
    rt = LlamaRuntime(default_model_path(), n_threads=2, batch_rows=batch_rows)
    build = PromptBuilder(rt.style, rt.format_chat).build
    out: dict = {}
    try:
        with streams_of_size(size):
            if batch_rows > 1:
                bool_type = T.BoolType()
                prompts = [build("Is the review positive?", bool_type, ["reviewText"], [t])
                           for t in texts]  # fmt: skip
                out["bool"] = [s.logprobs for s in rt.score_many(prompts, bool_type)]
            for out_type in (T.IntType(), T.StrType()):
                prompts = [build("How many stars out of 10?", out_type, ["reviewText"], [t])
                           for t in texts]  # fmt: skip
                run = rt.generate_many if batch_rows > 1 else rt.generate_rows
                with greedy.recording() as made:
                    texts_out = [g.text for g in run(prompts, out_type)]
                out[str(out_type)] = (texts_out, [d.trace for d in made])
    finally:
        rt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        texts = list(dict.fromkeys(r["reviewText"] for r in csv.DictReader(f)))
    texts = random.Random(1).sample(texts, args.rows)
    texts[3] = " ".join(texts[:12])  # a row of several reviews
    shipped = batch_scorer.STREAM_CELLS
    memory = {
        f"n_ctx {n_ctx}, {label}": context_mb(n_ctx, BATCH_ROWS, size(n_ctx))
        for n_ctx in (2048, 8192)
        for label, size in (
            ("streams of n_ctx (before)", lambda n: n),
            (f"streams of {shipped} cells (now)", lambda n: None),
        )  # fmt: skip
    }
    same = {}
    for batch_rows, recipe in ((BATCH_ROWS, f"{BATCH_ROWS} a decode"), (1, "shared steps")):
        whole, now = answers(batch_rows, 2048, texts), answers(batch_rows, None, texts)
        for kind in whole:
            same[f"{recipe}, {kind}"] = whole[kind] == now[kind]
    flags = cpu_backend.simd_flags()
    lines = [
        "# The batched context's memory, and the answers at each stream size\n",
        f"`bench/stream_memory.py`: bundled Gemma 3 270M Q4_K_M, {cpu_backend.cpu_model()} "
        f"({', '.join(flags)}), {BATCH_ROWS} streams and the head's; resident memory the "
        "batched context adds.\n",
        "| model context | streams | MB |",
        "|---|---|---|",
        *(f"| {k.split(', ')[0]} | {k.split(', ')[1]} | {v:.0f} |" for k, v in memory.items()),
        f"\n{args.rows} sample reviews (one of them twelve reviews long), streams of 2048 "
        f"positions against {shipped} cells, n_ctx 2048:\n",
        "| recipe, answers | every number the same |",
        "|---|---|",
        *(f"| {k} | {'yes' if v else 'NO'} |" for k, v in same.items()),
    ]
    figures = {"memory_mb": memory, "same_bits": same, "rows": args.rows, "simd": flags}
    write_results(Path(args.out), "stream-memory", figures, lines)


if __name__ == "__main__":
    main()
