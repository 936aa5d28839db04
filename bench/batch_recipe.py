"""A batched decoding recipe whose label scores do not depend on batch mates (#35).

Measured, not yet how SemQL runs. Several rows share every llama_decode, each in its own
KV stream (``kv_unified = False``), and every decode has one fixed shape: ``slots``
streams x ``chunk`` tokens. A row's tokens after the shared head (the prompt's first
segment, prefilled once in stream 0 as the runtime chunks it and copied to each stream)
go in pieces of ``chunk`` tokens counted from the head's end; a short piece is padded
with filler tokens at the positions after it, which no real token attends to (causal
mask) and which are removed before the row's next piece; an idle stream decodes filler
only. Every stream asks for one output each decode (its piece's last token), whether
or not its row ends there: llama.cpp also picks the output layer's kernel by how many
outputs a decode asks for.

Why it can be independent: llama.cpp picks its matrix kernels by the number of tokens
in a ubatch (the earlier probe: the same row in 8 identical slots still differed from
the row alone in 22 of 24 rows), and a non-unified cache splits a ubatch by sequence
into equal lengths. With one shape every decode takes the same kernels, every stream
gives the same number of tokens, and a row's pieces are fixed by its own tokens.

For each map (bool, options: label-scored as queries run them, with the prompt layout
of bench/lm_limits.py) this script reports, in one run on ``--rows`` distinct reviews:

- rows/s of today's runtime (16-token chunks one row at a time) and of the recipe, and
  both as a share of llama.cpp's own prefill of the rows' tokens in batches of 512
  (``prefill_limit``, as bench/lm_limits.py measures it);
- bitwise independence: the label log-probs of every row in the run order, in
  ``--trials`` random orders split at a random row into two batches, and of
  ``--alone`` rows each run alone (the other streams idle), all compared bit for bit;
- the accuracy of the calibrated answers of both recipes against SemBench's labels
  (the rows are outside the query movies; labels only score, nothing is chosen on them),
  and how many answers differ between the two recipes;
- the memory of the batched context.

    python bench/batch_recipe.py --rows 1000 --threads 2   # on an idle machine
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import llama_cpp
import numpy as np
from lm_limits import (
    MAPS,
    answer_all,
    calibrated_accuracy,
    prefill_limit,
    prompts_of,
    reviews,
)

from semql.executors.runtimes import cpu_backend
from semql.executors.runtimes.llama_runtime import LlamaRuntime, _chunk_starts, _log_softmax
from semql.executors.runtimes.model_files import default_model_path


class FixedShapeScorer:
    """Label log-probs of closed-set prompts, ``slots`` rows per fixed-shape decode."""

    def __init__(
        self, runtime: LlamaRuntime, slots: int, chunk: int, threads: int, flash: bool = True
    ):
        self.rt, self.slots, self.chunk = runtime, slots, chunk
        p = llama_cpp.llama_context_default_params()
        p.n_ctx, p.n_seq_max, p.kv_unified = runtime.n_ctx * (slots + 1), slots + 1, False
        p.n_batch = p.n_ubatch = slots * chunk
        p.n_threads = p.n_threads_batch = threads
        p.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self.ctx = llama_cpp.llama_init_from_model(runtime._llm._model.model, p)
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(slots * chunk, 0, slots + 1)
        self.head: list[int] = []

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        b = self.batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.seq_id[i][0] = token, pos, 1, seq
            b.logits[i] = logits
        if llama_cpp.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def _prefill_head(self, head: list[int]) -> None:
        """The head in stream 0, chunked as the runtime chunks a segment, then copied."""
        llama_cpp.llama_memory_clear(self.mem, True)
        bounds = [*_chunk_starts([0], len(head)), len(head)]
        for a, e in zip(bounds[:-1], bounds[1:], strict=True):
            self._decode([(head[k], k, 0, False) for k in range(a, e)])
        self.head = head

    def _reset(self, seq: int) -> None:
        """Stream ``seq`` as stream 0 holds it: the head alone, in the same cells."""
        if llama_cpp.llama_memory_seq_pos_max(self.mem, seq) < 0:
            llama_cpp.llama_memory_seq_cp(self.mem, 0, seq, -1, -1)
        else:
            llama_cpp.llama_memory_seq_rm(self.mem, seq, len(self.head), -1)

    def score(self, prompts: list, labels: list[int]) -> list[tuple[float, ...]]:
        """Each prompt's log-prob of each single-token label, in prompt order."""
        toks = [self.rt.tokenize_segments(p) for p in prompts]
        head_len = toks[0][1][1]
        head = toks[0][0][:head_len]
        if head != self.head:
            self._prefill_head(head)
            for j in range(1, self.slots + 1):
                self._reset(j)
        c, pad = self.chunk, head[-1]
        queue = list(range(len(prompts)))
        slots: list[list | None] = [None] * self.slots  # [row, pieces, next position]
        out: dict[int, tuple[float, ...]] = {}
        while queue or any(s is not None for s in slots):
            for j in range(self.slots):
                if slots[j] is None and queue:
                    r = queue.pop(0)
                    tokens = toks[r][0]
                    assert tokens[:head_len] == head, "rows of one call share its head"
                    pieces = [tokens[a : a + c] for a in range(head_len, len(tokens), c)]
                    slots[j] = [r, pieces, head_len]
            items: list[tuple[int, int, int, bool]] = []
            wanted: dict[int, int] = {}
            for j, s in enumerate(slots):
                if s is None:
                    items += [(pad, head_len + k, j + 1, k == c - 1) for k in range(c)]
                    continue
                piece = s[1][0]
                n = len(piece)
                wanted[j] = len(items) + n - 1
                items += [
                    (piece[k] if k < n else pad, s[2] + k, j + 1, k == n - 1) for k in range(c)
                ]
            self._decode(items)
            for j, s in enumerate(slots):
                if s is None:
                    llama_cpp.llama_memory_seq_rm(self.mem, j + 1, head_len, -1)
                    continue
                s[2] += len(s[1].pop(0))
                if s[1]:
                    llama_cpp.llama_memory_seq_rm(self.mem, j + 1, s[2], -1)  # the filler
                    continue
                ptr = llama_cpp.llama_get_logits_ith(self.ctx, wanted[j])
                z = _log_softmax(np.ctypeslib.as_array(ptr, shape=(self.rt.n_vocab,)))
                out[s[0]] = tuple(float(z[t]) for t in labels)
                self._reset(j + 1)
                slots[j] = None
        return [out[r] for r in range(len(prompts))]

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--alone", type=int, default=16)
    ap.add_argument("--maps", default="bool,options")
    ap.add_argument("--no-flash-attn", action="store_true", help="llama.cpp's plain attention")
    ap.add_argument("--out", default="bench/results/throughput")
    args = ap.parse_args()
    rt = LlamaRuntime(default_model_path(), n_threads=args.threads)
    data = reviews(args.rows)
    texts, gold = [t for t, _ in data], [g for _, g in data]
    before = rss_mb()
    fixed = FixedShapeScorer(rt, args.slots, args.chunk, args.threads, not args.no_flash_attn)
    res: dict = {
        "rows": len(texts),
        "threads": args.threads,
        "slots": args.slots,
        "chunk": args.chunk,
        "flash_attn": not args.no_flash_attn,
        "context_mb": rss_mb() - before,
        "cpu": cpu_backend.cpu_model(),
        "amx": "amx_tile" in cpu_backend.cpu_flags(),
        "maps": {},
    }
    rng = random.Random(0)
    for kind in args.maps.split(","):
        out_type = MAPS[kind][1]
        labels = [rt._label_tokens(lab)[0] for lab in out_type.labels()]
        assert all(len(rt._label_tokens(lab)) == 1 for lab in out_type.labels())
        prompts = prompts_of(rt, kind, texts)
        limit_tokens = prefill_limit(rt, prompts)
        today, t_stats = answer_all(rt, kind, prompts)
        fixed.score(prompts[: args.slots], labels)  # warm: head cached, graph built
        started = time.perf_counter()
        base = fixed.score(prompts, labels)
        seconds = time.perf_counter() - started
        equal, compared = 0, 0
        for _ in range(args.trials):
            order = list(range(len(prompts)))
            rng.shuffle(order)
            cut = rng.randint(1, len(order) - 1)
            got = {}
            for part in (order[:cut], order[cut:]):
                got.update(zip(part, fixed.score([prompts[i] for i in part], labels), strict=True))
            equal += sum(got[i] == base[i] for i in order)
            compared += len(order)
        alone = rng.sample(range(len(prompts)), min(args.alone, len(prompts)))
        alone_equal = sum(fixed.score([prompts[i]], labels)[0] == base[i] for i in alone)
        fresh = t_stats["fresh_tokens_per_row"]
        limit_rows = limit_tokens / fresh
        batched_lp = lambda ps, labels=labels: fixed.score(ps, labels)  # noqa: E731
        decide = lambda lps: [int(np.argmax(lp)) for lp in lps]  # noqa: E731
        res["maps"][kind] = {
            "limit_rows_per_s": limit_rows,
            "fresh_tokens_per_row": fresh,
            "today_rows_per_s": t_stats["rows_per_s"],
            "recipe_rows_per_s": len(prompts) / seconds,
            "today_share": t_stats["rows_per_s"] / limit_rows,
            "recipe_share": len(prompts) / seconds / limit_rows,
            "orders_bitwise_equal": f"{equal}/{compared}",
            "alone_bitwise_equal": f"{alone_equal}/{len(alone)}",
            "raw_answers_differing": sum(
                a != b for a, b in zip(decide(today), decide(base), strict=True)
            ),
            "max_logprob_diff": float(np.max(np.abs(np.asarray(today) - np.asarray(base)))),
            "today_accuracy": calibrated_accuracy(rt, kind, today, gold),
            "recipe_accuracy": calibrated_accuracy(rt, kind, base, gold, batched_lp),
        }
        print(kind, json.dumps(res["maps"][kind], indent=1), flush=True)
    fixed.close()
    write(res, Path(args.out))


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"batch-recipe-{stamp}.json").write_text(json.dumps(res, indent=1))
    lines = [
        f"# Fixed-shape batched recipe: {res['slots']} streams x {res['chunk']} tokens, "
        f"flash attention {'on' if res['flash_attn'] else 'off'}",
        "",
        f"From `bench/batch_recipe.py`, one run: {res['rows']} distinct reviews outside "
        f"SemBench's query movies, bundled Gemma 3 270M Q4_K_M, {res['threads']} threads, "
        f"{res['cpu']}{' (AMX)' if res['amx'] else ''}. "
        f"Batched context: {res['context_mb']:.0f} MB.",
        "",
        "| map | limit rows/s | today rows/s (share) | recipe rows/s (share) | orders bitwise"
        " | alone bitwise | answers differing | accuracy today / recipe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, m in res["maps"].items():
        lines.append(
            f"| {kind} | {m['limit_rows_per_s']:.1f} | {m['today_rows_per_s']:.1f} "
            f"({m['today_share']:.0%}) | {m['recipe_rows_per_s']:.1f} "
            f"({m['recipe_share']:.0%}) | {m['orders_bitwise_equal']} | "
            f"{m['alone_bitwise_equal']} | {m['raw_answers_differing']} "
            f"(max log-prob diff {m['max_logprob_diff']:.2f}) | "
            f"{m['today_accuracy']:.3f} / {m['recipe_accuracy']:.3f} |"
        )
    (out / f"batch-recipe-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
