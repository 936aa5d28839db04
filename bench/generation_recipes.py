"""Shared step decodes for generated answers (int and short text), against one row at a time.

A generated answer costs its prompt's prefill plus one single-token decode per answer
token, and each of those decodes computes the output layer of Gemma 3's 262k-token
vocabulary for one row. On a CPU without AVX-512 the int map reached 64-68% of llama.cpp's
prefill limit one row at a time (bench/lm_limits.py), against 84-86% for a label-scored
bool map whose answer needs no decode at all. Decoding the space the grammar forces in
the prompt's own decode saved no time (forced-draft-20261206-174443): outputs, not
decodes, are what those steps cost. Measured here with this file's own prototype, which
became executors/runtimes/shared_steps.py (the engine's recipe for a map's generated rows
where rows go one at a time), and which also runs steps only as wide as needed:

- ``shared steps``: each row's prompt is decoded alone, in chunks of 64 from the shared
  head's end, in its own KV stream of the batched context (batch_scorer.py); its answer
  tokens then go in step decodes of one token for each of 8 streams (a fixed shape, as
  batch_generator.py's), which serve every row then answering. A row's numbers then
  depend on its own tokens only: checked here as every logits vector equal bit for bit
  with the rows shuffled and with a row alone, for fixed steps and for steps only as wide
  as the rows then answering.

Two maps with lm_limits.py's prompt layout and examples: its int map ("How many stars
from 1 to 5", 2-3 answer tokens a row) and a short free-text one (one word of the review,
as a JSON string: 4-6 tokens). Reported in one run, ``--rounds`` interleaved, medians:
rows/s of each recipe and its share of llama.cpp's prefill limit for the same row tokens
(lm_limits.prefill_limit), answers equal to one row at a time's, and for shared steps
the milliseconds of a prompt decode and of a step decode.

    python bench/generation_recipes.py --rows 160 --rounds 3  # idle machine
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from lm_limits import MAPS as LIMIT_MAPS
from lm_limits import SHOTS, prefill_limit, reviews, row_tokens

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.batch_scorer import head_length, streams_of
from semql.executors.runtimes.greedy import GreedyDecoder
from semql.executors.runtimes.llama_runtime import PREFILL_CHUNK, LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar.types import OutputType, StrType
from semql.planner.physical.prompt_format import PromptBuilder

SLOTS = 8
MAPS = {  # name: question, output type, the examples' answers (negative, positive)
    "int": LIMIT_MAPS["int"],
    "str": (
        "Which word of the review says most about it?",
        StrType(max_chars=60),
        ("plodding", "delight"),
    ),
}
CALL_ROWS = 32  # rows handed over a call


def one_row(rt, prompts, out_type) -> list[str]:
    return [rt.generate(p, out_type).text for p in prompts]


class SharedSteps:
    """Prompts alone in their streams, answer tokens in step decodes: ``SLOTS x 1``
    always (``fixed``), or only as wide as the rows then answering. With ``trace`` set,
    ``traces`` holds for each prompt of the last call a digest of every logits vector
    its tokens were chosen from (bit for bit)."""

    def __init__(self, rt, fixed: bool = True):
        self.rt, self.streams, self.fixed = rt, streams_of(rt), fixed
        self.ms = defaultdict(list)
        self.trace, self.traces = False, []

    def _choose(self, row: dict, logits: np.ndarray) -> None:
        if self.trace:
            row["trace"].append(hashlib.sha256(logits.tobytes()).hexdigest())
        row["token"] = row["dec"].step(logits)

    def _decode(self, kind: str, items) -> None:
        started = time.perf_counter()
        self.streams.decode(items)
        self.ms[kind].append(1000 * (time.perf_counter() - started))

    def __call__(self, rt, prompts, out_type) -> list[str]:
        toks = [self.rt.tokenize_segments(p) for p in prompts]
        head = toks[0][0][: head_length(*toks[0])]
        self.streams.use_head(list(head))
        budget = out_type.token_budget()
        rows = [
            {"i": i, "tokens": t, "dec": GreedyDecoder(self.rt, out_type, budget), "trace": []}
            for i, (t, _) in enumerate(toks)
        ]
        done = {r["i"]: r for r in self._run(rows, len(head))}
        self.traces = [tuple(done[i]["trace"]) for i in range(len(prompts))]
        return [done[i]["dec"].text() for i in range(len(prompts))]

    def _prompt(self, row: dict, seq: int, head_len: int) -> None:
        tokens = row["tokens"]
        for a in range(head_len, len(tokens), PREFILL_CHUNK):
            piece = tokens[a : a + PREFILL_CHUNK]
            last = a + len(piece) == len(tokens)
            self._decode(
                "prompt",
                [(t, a + k, seq, last and k == len(piece) - 1) for k, t in enumerate(piece)],
            )
        row["end"] = len(tokens)
        self._choose(row, self.streams.logits(len(piece) - 1))

    def _run(self, rows: list[dict], head_len: int):
        streams, pad = self.streams, self.streams.head[-1]
        queue = list(reversed(rows))
        slots: list[dict | None] = [None] * SLOTS
        while queue or any(slots):
            for j in range(SLOTS):
                while slots[j] is None and queue:
                    row = queue.pop()
                    self._prompt(row, j + 1, head_len)
                    if row["token"] is None:
                        streams.reset(j + 1)
                        yield row
                    else:
                        slots[j] = row
            if not any(slots):
                continue
            items, at = [], {}
            for j, r in enumerate(slots):
                if r is not None:
                    at[j] = len(items)
                    items.append((r["token"], r["end"], j + 1, True))
                elif self.fixed:  # filler keeps the shape, removed after
                    items.append((pad, head_len, j + 1, True))
            self._decode("step", items)
            for j, row in enumerate(slots):
                if row is None:
                    streams.reset(j + 1)
                    continue
                row["end"] += 1
                self._choose(row, streams.logits(at[j]))
                if row["token"] is None:
                    streams.reset(j + 1)
                    slots[j] = None
                    yield row


def timed(fn, rt, prompts, out_type) -> tuple[list[str], float]:
    fn(rt, prompts[:8], out_type)  # grammar compiled, head in place
    started = time.perf_counter()
    texts = []
    for a in range(0, len(prompts), CALL_ROWS):
        texts += fn(rt, prompts[a : a + CALL_ROWS], out_type)
    return texts, len(prompts) / (time.perf_counter() - started)


def map_prompts(rt, kind: str, texts: list[str]) -> tuple[OutputType, list]:
    question, out_type, answers = MAPS[kind]
    shots = [(text, answers[label]) for text, label in SHOTS]
    builder = PromptBuilder(rt.style, rt.format_chat)
    return out_type, [builder.build(question, out_type, ["reviewText"], [t], shots) for t in texts]


def measure(kind: str, single, streamed, shared, texts: list[str], rounds: int) -> dict:
    out_type, prompts = map_prompts(single, kind, texts)
    per_row = row_tokens(single, prompts)
    recipes = {"one row": (one_row, single), "shared steps": (shared, streamed)}
    rates, shares, limits, answers = defaultdict(list), defaultdict(list), [], {}
    shared.ms.clear()
    for r in range(rounds):
        limit = prefill_limit(single, prompts) / per_row
        limits.append(limit)
        for name, (fn, rt) in recipes.items():
            got, rate = timed(fn, rt, prompts, out_type)
            if name in answers and answers[name] != got:
                raise SystemExit(f"{kind}, {name}: answers moved between rounds")
            answers[name] = got
            rates[name].append(rate)
            shares[name].append(rate / limit)
            print(
                f"{kind} round {r + 1}: {name} {rate:.2f} rows/s ({rate / limit:.0%})", flush=True
            )
    steps = {k: float(np.median(v)) for k, v in shared.ms.items()}
    checks = {"fixed": independence(shared, streamed, prompts, out_type)}
    checks["as wide as needed"] = independence(
        SharedSteps(streamed, fixed=False), streamed, prompts, out_type
    )
    base = answers["one row"]
    return {
        "row_tokens": per_row,
        "limit_rows_per_s": float(np.median(limits)),
        "recipes": {
            n: {
                "rows_per_s": float(np.median(rates[n])),
                "share": float(np.median(shares[n])),
                "same_as_one_row": sum(a == b for a, b in zip(answers[n], base, strict=True)),
            }
            for n in recipes
        },
        "prompt_decode_ms": steps["prompt"],
        "step_decode_ms": steps["step"],
        "independence": checks,
    }


def independence(shared: SharedSteps, rt, prompts: list, out_type, n: int = 48) -> dict:
    """Rows whose every logits vector is the same bit for bit in their first ``n``-row
    order, shuffled, and (the first n/4) each alone."""
    n = min(n, len(prompts))
    prompts = prompts[:n]
    shared.trace = True
    shared(rt, prompts, out_type)
    first = shared.traces
    order = list(range(n))
    random.Random(1).shuffle(order)
    shared(rt, [prompts[i] for i in order], out_type)
    shuffled = {i: shared.traces[k] for k, i in enumerate(order)}
    alone = []
    for i in range(n // 4):
        shared(rt, [prompts[i]], out_type)
        alone.append(shared.traces[0] == first[i])
    shared.trace = False
    return {
        "rows": n,
        "shuffled_equal": sum(shuffled[i] == first[i] for i in range(n)),
        "alone_rows": len(alone),
        "alone_equal": sum(alone),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maps", default="int,str")
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    path = default_model_path()
    single = LlamaRuntime(path, n_threads=args.threads, batch_rows=1)
    streamed = LlamaRuntime(path, n_threads=args.threads, batch_rows=SLOTS)
    shared = SharedSteps(streamed)
    texts = [t for t, _ in reviews(args.rows)]
    res = {
        "cpu": f"{cpu_backend.cpu_model()}, extra buffer types "
        f"{'on' if single.backend.extra_bufts else 'off'}",
        "rows": len(texts),
        "threads": args.threads,
        "rounds": args.rounds,
        "maps": {
            k: measure(k, single, streamed, shared, texts, args.rounds)
            for k in args.maps.split(",")
        },
    }
    write(res, Path(args.out))


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"generation-recipes-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [
        "# Generated answers: one row at a time against shared step decodes\n",
        f"`bench/generation_recipes.py`, {res['rows']} reviews outside SemBench's query "
        f"movies, bundled Gemma 3 270M, {res['threads']} threads, {res['cpu']}, "
        f"{res['rounds']} interleaved rounds (medians). Limit: llama.cpp's prefill of the "
        "same row tokens, 512 a decode (bench/lm_limits.py).\n",
        "| map | recipe | rows/s | share of the limit | answers as one row at a time |",
        "|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        for name, r in m["recipes"].items():
            lines.append(
                f"| {kind} | {name} | {r['rows_per_s']:.2f} | {r['share']:.0%} | "
                f"{r['same_as_one_row']}/{res['rows']} |"
            )
    lines.append("")
    for kind, m in res["maps"].items():
        lines.append(
            f"- {kind}: limit {m['limit_rows_per_s']:.2f} rows/s ({m['row_tokens']:.1f} "
            f"tokens a row); shared steps: a prompt decode {m['prompt_decode_ms']:.1f} ms, a "
            f"step decode ({SLOTS} streams, {SLOTS} outputs) {m['step_decode_ms']:.1f} ms. "
            "Rows whose every logits vector was equal bit for bit, shuffled / alone: "
            + "; ".join(
                f"{steps} steps {c['shuffled_equal']}/{c['rows']} / "
                f"{c['alone_equal']}/{c['alone_rows']}"
                for steps, c in m["independence"].items()
            )
            + "."
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
