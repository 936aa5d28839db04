"""What one fixed-shape decode of the batched streams costs, and where its time goes.

The batched recipes (executors/runtimes/batch_scorer.py, batch_generator.py) run every
decode as ``slots`` streams x 16 tokens (prompt pieces) or ``slots`` x 1 (answer steps),
each stream asking for one output. This times those shapes on filler tokens after a short
head, with and without the outputs, and a lone row's single-token step in the runtime's
own context, the mean of REPEAT decodes each, so the recipe's ceiling can be read off:
the share of a decode that is outputs (each one a 262k-token vocabulary row). A lone row's
pieces are timed at both the batched recipe's 16 tokens and a row alone's PREFILL_CHUNK.

    python bench/decode_shapes.py --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from results_file import write_results

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.batch_scorer import CHUNK, streams_of
from semql.executors.runtimes.cpu_backend import BATCH_ROWS
from semql.executors.runtimes.llama_runtime import PREFILL_CHUNK, LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import BoolType

REPEAT = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads, batch_rows=BATCH_ROWS)
    rt.score_many(["A short head for the streams."] * 2, BoolType())  # context allocated
    st = streams_of(rt)
    head = len(st.head)
    pad = st.head[-1]

    def decode_ms(tokens: int, outputs: bool) -> float:
        started = time.perf_counter()
        for _ in range(REPEAT):
            st.decode(
                [
                    (pad, head + k, j + 1, outputs and k == tokens - 1)
                    for j in range(st.slots)
                    for k in range(tokens)
                ]
            )
            for j in range(st.slots):
                st.reset(j + 1)
        return (time.perf_counter() - started) / REPEAT * 1000

    shapes = {
        f"{st.slots} x {CHUNK}, {st.slots} outputs": decode_ms(CHUNK, True),
        f"{st.slots} x {CHUNK}, no output": decode_ms(CHUNK, False),
        f"{st.slots} x 1, {st.slots} outputs": decode_ms(1, True),
    }
    tokens = rt.tokenize("A lone row in the runtime's own context, for one step.")
    rt._prefill(tokens)
    llm = rt._llm
    started = time.perf_counter()
    for _ in range(REPEAT):
        rt._decode([tokens[3]], logits=True)
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens - 1, -1)
        llm.n_tokens -= 1
    shapes["lone row, 1 token, 1 output"] = (time.perf_counter() - started) / REPEAT * 1000
    for size in (CHUNK, PREFILL_CHUNK):  # the batched recipe's piece, a row alone's chunk
        piece = (tokens * size)[:size]
        for outputs in (True, False):
            started = time.perf_counter()
            for _ in range(REPEAT):
                rt._decode(piece, logits=outputs)
                llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens - size, -1)
                llm.n_tokens -= size
            label = f"lone row, {size} tokens, {'1 output' if outputs else 'no output'}"
            shapes[label] = (time.perf_counter() - started) / REPEAT * 1000
    rt.close()
    res = {"threads": args.threads, "cpu": cpu_backend.cpu_model(), "ms": shapes}
    res["amx"] = "amx_tile" in cpu_backend.cpu_flags()
    lines = [
        f"# Decode shapes ({res['cpu']}{' (AMX)' if res['amx'] else ''}, {args.threads} "
        f"threads, mean of {REPEAT})\n",
        "| decode | ms |",
        "|---|---|",
        *(f"| {k} | {v:.1f} |" for k, v in shapes.items()),
    ]
    write_results(Path(args.out), "decode-shapes", res, lines)


if __name__ == "__main__":
    main()
