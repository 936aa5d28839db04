"""Where LM time goes on this CPU, and how close SemQL gets to llama.cpp's prefill limit.

For N distinct reviews (seeded draw, rows of SemBench's query movies left out) and the
bundled Gemma 3 270M, run a bool map and an options map (label-scored, as queries run
them) and an int map (generated under its grammar) through the runtime, with the prompt
layout queries use (instruction and two invented examples, then the review, then the
answer cue), and report:

- rows/s, and the prompt tokens each row computes (those not served by the KV cache);
- the split of the time: llama_decode calls, reading and normalising the logits (a
  262k-token vocabulary), the rest (tokenising, grammar, Python);
- the limit: llama.cpp's own prefill rate for the same tokens in batches of 512 from an
  empty cache, as rows/s (the rate divided by the tokens a row computes), and the share of
  it reached;
- prefill chunks of 16 (SemQL's), 64 and 512 tokens (answers compared with 16's), in
  ROUNDS interleaved rounds, the median reported: on this shared machine the speed of
  one run moves by about 10% from the next;
- weight formats: the shipped Q4_K_M and the same weights requantised by llama.cpp to
  Q4_0 and Q8_0: speed, and accuracy of the calibrated bool and options answers against
  SemBench's labels (labels only score; nothing is chosen on these rows);
- several rows in one llama_decode (one sequence per row, the shared head copied with
  the KV cache's sequence operations): speed, and whether each row's label log-probs are
  bitwise those of one row at a time.

    python bench/lm_limits.py --rows 200 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
import time
from pathlib import Path

import llama_cpp
import llama_cpp._internals as internals
import numpy as np
from stored_scores import QUERY_MOVIES

from semql.executors.lm.closed_set import (
    CONTENT_FREE,
    answer_value,
    content_free_prior,
    probabilities,
)
from semql.executors.runtimes import llama_runtime
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import BoolType, IntType, OptionsType
from semql.planner.prompt_format import PromptBuilder
from semql.sample import sample_dir

SHOTS = [
    ("A joyless, plodding mess that wastes its talented cast.", 0),
    ("Funny, warm and beautifully made: a delight from start to finish.", 1),
]
MAPS = {  # name: question, output type, the examples' answers (negative, positive)
    "bool": ("Is this movie review positive?", BoolType(), (False, True)),
    "options": (
        "What is the sentiment of this movie review?",
        OptionsType(("positive", "negative")),
        ("negative", "positive"),
    ),
    "int": ("How many stars from 1 to 5 would the critic give?", IntType(), (1, 5)),
}
FORMATS = {"q4_k_m": None, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0}
FORMATS["q8_0"] = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
CHUNKS = (16, 64, 512)
ROUNDS = 3
BATCH_ROWS = 8


def reviews(n: int, seed: int = 0) -> list[tuple[str, bool]]:
    """(text, positive?) of n distinct reviews outside SemBench's query movies."""
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["id"] not in QUERY_MOVIES]
    by_text = {r["reviewText"]: r["scoreSentiment"] == "POSITIVE" for r in rows}
    texts = sorted(by_text)
    random.Random(seed).shuffle(texts)
    return [(t, by_text[t]) for t in texts[:n]]


def prompts_of(runtime: LlamaRuntime, kind: str, texts: list[str]) -> list:
    question, out_type, answers = MAPS[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    return [builder.build(question, out_type, ["reviewText"], [t], shots) for t in texts]


class Timed:
    """Wraps the runtime's llama_decode and logits reads to split the time."""

    def __init__(self, runtime: LlamaRuntime):
        self.decode = self.logits = 0.0
        decode, logits = runtime._decode, runtime._logits
        softmax = llama_runtime._log_softmax

        def timed_decode(tokens, logits):
            t = time.perf_counter()
            decode(tokens, logits)
            self.decode += time.perf_counter() - t

        def timed_logits():
            t = time.perf_counter()
            out = logits()
            self.logits += time.perf_counter() - t
            return out

        def timed_softmax(z):
            t = time.perf_counter()
            out = softmax(z)
            self.logits += time.perf_counter() - t
            return out

        runtime._decode, runtime._logits = timed_decode, timed_logits
        llama_runtime._log_softmax = timed_softmax
        self._runtime, self._softmax = runtime, softmax

    def close(self) -> None:
        del self._runtime._decode, self._runtime._logits  # the class's methods again
        llama_runtime._log_softmax = self._softmax


def answer_all(runtime: LlamaRuntime, kind: str, prompts: list) -> tuple[list, dict]:
    """Each row's raw label log-probs (bool, options) or generated text (int), timed."""
    out_type = MAPS[kind][1]
    scored = out_type.labels() is not None
    ask = runtime.score if scored else runtime.generate
    for p in prompts[:8]:  # grammar compiled, head in the KV cache, caches warm
        ask(p, out_type)
    timed = Timed(runtime)
    fresh = 0
    out = []
    started = time.perf_counter()
    try:
        for p in prompts:
            r = ask(p, out_type)
            fresh += r.prompt_tokens - r.cached_tokens
            out.append(r.logprobs if scored else r.text)
    finally:
        timed.close()
    seconds = time.perf_counter() - started
    return out, {
        "rows_per_s": len(prompts) / seconds,
        "fresh_tokens_per_row": fresh / len(prompts),
        "decode_share": timed.decode / seconds,
        "logits_share": timed.logits / seconds,
        "seconds": seconds,
    }


def prefill_limit(runtime: LlamaRuntime, prompts: list) -> float:
    """llama.cpp's prefill rate (tokens/s) for the rows' own tokens, 512 at a time,
    each batch from an empty cache (positions 0-511: no more attention than a row with
    its prompt head computes), best of two."""
    tokens: list[int] = []
    for p in prompts:
        toks, starts = runtime.tokenize_segments(p)
        tokens += toks[starts[1] :]  # past the shared head
    tokens = tokens[: 4 * 512]
    llm = runtime._llm
    best = 0.0
    for _ in range(2):
        seconds = 0.0
        for i in range(0, len(tokens), 512):  # each batch from an empty cache
            llm.reset()
            llm._ctx.kv_cache_clear()
            started = time.perf_counter()
            runtime._decode(tokens[i : i + 512], logits=True)
            seconds += time.perf_counter() - started
        best = max(best, len(tokens) / seconds)
    llm.reset()
    llm._ctx.kv_cache_clear()
    runtime._chunk_starts = []
    return best


def calibrated_accuracy(runtime, kind: str, logprobs, gold, score=None) -> float:
    """Accuracy of the content-free calibrated answers, decided as queries decide them
    (executors/lm/closed_set.py). ``score`` gives the content-free prompts' label
    log-probs (default: the runtime's own ``score``)."""
    question, out_type, answers = MAPS[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(runtime.style, runtime.format_chat)
    empty = [builder.build(question, out_type, ["reviewText"], [v], shots) for v in CONTENT_FREE]
    if score is None:
        empty_scores = [runtime.score(p, out_type).logprobs for p in empty]
    else:
        empty_scores = score(empty)
    prior, _ = content_free_prior("content_free", empty_scores)
    decided = [answer_value(out_type, probabilities(list(lp)), prior) for lp in logprobs]
    positive = answers[1]  # the examples' answers are (negative, positive)
    return float(np.mean([(d == positive) == g for d, g in zip(decided, gold, strict=True)]))


def batched_scores(runtime: LlamaRuntime, prompts: list, rows: int) -> tuple[list, float]:
    """Label log-probs with ``rows`` prompts per llama_decode (one sequence each, the
    shared head copied), and rows/s. An experiment: not how SemQL runs."""
    llm = runtime._llm
    params = llm.context_params
    params.n_seq_max, params.kv_unified = rows, True
    ctx = internals.LlamaContext(model=llm._model, params=params, verbose=False)
    batch = internals.LlamaBatch(n_tokens=4096, embd=0, n_seq_max=rows, verbose=False)
    labels = [runtime.label_tokens(lab)[0] for lab in BoolType().labels()]
    toks = [runtime.tokenize_segments(p) for p in prompts]
    head_len = toks[0][1][1]

    def add(tokens, pos0, seq):
        n0 = batch.batch.n_tokens
        for k, tok in enumerate(tokens):
            j = n0 + k
            batch.batch.token[j], batch.batch.pos[j] = tok, pos0 + k
            batch.batch.seq_id[j][0], batch.batch.n_seq_id[j] = seq, 1
            batch.batch.logits[j] = k == len(tokens) - 1
        batch.batch.n_tokens = n0 + len(tokens)
        return n0 + len(tokens) - 1

    starts = llama_runtime._chunk_starts([0], head_len)
    for s, e in zip(starts, [*starts[1:], head_len], strict=True):
        batch.batch.n_tokens = 0
        add(toks[0][0][s:e], s, 0)
        ctx.decode(batch)
    out = []
    started = time.perf_counter()
    for g in range(0, len(toks), rows):
        group = toks[g : g + rows]
        for j in range(1, len(group)):
            ctx.kv_cache_seq_cp(0, j, 0, head_len)
        batch.batch.n_tokens = 0
        lasts = [add(t[head_len:], head_len, j) for j, (t, _) in enumerate(group)]
        ctx.decode(batch)
        for i in lasts:
            ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, i)
            z = llama_runtime._log_softmax(np.ctypeslib.as_array(ptr, shape=(runtime.n_vocab,)))
            out.append([float(z[t]) for t in labels])
        for j in range(len(group)):
            ctx.kv_cache_seq_rm(j, head_len, -1)
    seconds = time.perf_counter() - started
    ctx.close()
    batch.close()
    return out, len(prompts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    data = reviews(args.rows)
    texts, gold = [t for t, _ in data], [g for _, g in data]
    results: dict = {"rows": len(texts), "threads": args.threads, "runs": []}
    lines = [
        "# Where LM time goes, and the prefill limit\n",
        f"{len(texts)} distinct reviews (SemBench's query movies left out), bundled Gemma 3 "
        f"270M, {args.threads} thread(s), prompt head in the KV cache. Accuracy: calibrated "
        f"answer vs SemBench's label. Q4_K_M bool: median of {ROUNDS} interleaved rounds "
        "per chunk size.\n",
        "| weights | map | chunk | rows/s | tokens/row | decode | logits | other | "
        "limit rows/s | share of limit | accuracy | answers as chunk 16 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, ftype in FORMATS.items():
            path = default_model_path()
            if ftype is not None:
                path = os.path.join(tmp, f"gemma-{fmt}.gguf")
                qp = llama_cpp.llama_model_quantize_default_params()
                qp.ftype, qp.allow_requantize, qp.nthread = ftype, True, args.threads
                if llama_cpp.llama_model_quantize(default_model_path().encode(), path.encode(), qp):
                    raise SystemExit(f"requantising to {fmt} failed")
            runtime = LlamaRuntime(path, n_threads=args.threads, batch_rows=1)  # one row
            limit = None
            for kind in MAPS:
                prompts = prompts_of(runtime, kind, texts)
                if limit is None:
                    limit = prefill_limit(runtime, prompts)
                chunks = CHUNKS if fmt == "q4_k_m" and kind == "bool" else (16,)
                rounds = ROUNDS if len(chunks) > 1 else 1
                timings: dict[int, list[dict]] = {c: [] for c in chunks}
                outs: dict[int, list] = {}
                for _ in range(rounds):
                    for chunk in chunks:
                        llama_runtime.PREFILL_CHUNK = chunk
                        runtime._chunk_starts = []
                        out, r = answer_all(runtime, kind, prompts)
                        llama_runtime.PREFILL_CHUNK = 16
                        outs.setdefault(chunk, out)
                        timings[chunk].append(r)
                first = outs[16]
                for chunk in chunks:
                    out = outs[chunk]
                    runs = sorted(timings[chunk], key=lambda t: t["rows_per_s"])
                    r = runs[len(runs) // 2]  # the median run
                    acc = calibrated_accuracy(runtime, kind, out, gold) if kind != "int" else None
                    if kind == "int":
                        same = sum(a == b for a, b in zip(out, first, strict=True))
                    else:
                        same = sum(
                            int(np.argmax(a)) == int(np.argmax(b))
                            for a, b in zip(out, first, strict=True)
                        )
                    lim = limit / r["fresh_tokens_per_row"]
                    run = {"weights": fmt, "map": kind, "chunk": chunk, **r}
                    run |= {"rounds_rows_per_s": [t["rows_per_s"] for t in timings[chunk]]}
                    run |= {"limit_tokens_per_s": limit, "limit_rows_per_s": lim}
                    run |= {"accuracy": acc, "same_as_chunk_16": same}
                    results["runs"].append(run)
                    other = 1 - r["decode_share"] - r["logits_share"]
                    lines.append(
                        f"| {fmt} | {kind} | {chunk} | {r['rows_per_s']:.2f} | "
                        f"{r['fresh_tokens_per_row']:.1f} | {r['decode_share']:.0%} | "
                        f"{r['logits_share']:.0%} | {other:.0%} | {lim:.2f} | "
                        f"{r['rows_per_s'] / lim:.0%} | "
                        f"{'-' if acc is None else f'{acc:.3f}'} | {same}/{len(prompts)} |"
                    )
                    print(lines[-1], flush=True)
                if fmt == "q4_k_m" and kind == "bool":
                    batched, rate = batched_scores(runtime, prompts, BATCH_ROWS)
                    equal = sum(a == list(b) for a, b in zip(first, batched, strict=True))
                    flips = sum(
                        int(np.argmax(a)) != int(np.argmax(b))
                        for a, b in zip(first, batched, strict=True)
                    )
                    diff = float(np.max(np.abs(np.asarray(first) - np.asarray(batched))))
                    results["batched"] = {
                        "rows_per_decode": BATCH_ROWS,
                        "rows_per_s": rate,
                        "bitwise_equal": equal,
                        "label_flips": flips,
                        "max_abs_logprob_diff": diff,
                    }
            runtime.close()
    b = results["batched"]
    lines += [
        "",
        f"Limit: llama.cpp's prefill of the same row tokens, 512 per llama_decode, each "
        f"from an empty cache: {results['runs'][0]['limit_tokens_per_s']:.0f} tokens/s for "
        "Q4_K_M.",
        f"Batched ({b['rows_per_decode']} rows per llama_decode, bool, Q4_K_M): "
        f"{b['rows_per_s']:.2f} rows/s; label log-probs bitwise equal to one row at a time "
        f"for {b['bitwise_equal']}/{len(texts)} rows, largest difference "
        f"{b['max_abs_logprob_diff']:.3f}, answers flipped (raw argmax) {b['label_flips']}.",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"limits-{stamp}.json").write_text(json.dumps(results, indent=1))
    (out / f"limits-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
