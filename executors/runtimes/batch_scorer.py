"""Label scores of many prompts at once, each row's numbers independent of its batch mates.

Several rows share every ``llama_decode``, each in its own KV stream of a context with a
non-unified cache (``kv_unified = False``), and every decode has one fixed shape:
``slots`` streams x ``CHUNK`` tokens. llama.cpp picks its matrix kernels by the number of
tokens in a ubatch and the output layer's by the number of outputs, so a batch whose size
varied with the rows gave a row numbers that depended on its mates (bench/batch_recipe.py
measured 22 of 24 rows differing from the row alone). Here nothing varies:

* the prompt's first segment (the head: instructions, examples, question) is prefilled
  once in stream 0, in chunks of ``CHUNK`` from its start, and copied into each stream;
* a row's tokens after the head go in pieces of ``CHUNK`` counted from the head's end; a
  short piece is padded with filler tokens at the positions after it, which no real token
  attends to (causal mask) and which are removed before the row's next piece;
* an idle stream decodes filler only, and every stream asks for exactly one output each
  decode (its piece's last token);
* every decode stops at the final norm and a row's label logits come from the
  runtime's output head (output_head.py), where the runtime has one.

Only label sets whose labels are one token each come here (label_scores.batched): a
label's later tokens would be further pieces, each padded to ``CHUNK`` and run through
the whole vocabulary's output layer, where one row at a time decodes them all in one
decode, and batched ran such sets at 0.44-0.62x the rows/s of one row at a time
(bench/label_sets.py, results/throughput/label-sets-20261207-170152).

So a row's label scores depend on its own tokens only: bench/batch_recipe.py found them
bit for bit equal across random orders, splits and the row alone (2000/2000 and 16/16
rows, Intel Xeon AVX-512+AMX). Plain attention, not flash attention: flash attention was
faster but moved the content-free prior and cost calibrated accuracy (0.779 -> 0.706).
"""

from __future__ import annotations

from dataclasses import dataclass

import llama_cpp
import numpy as np

from semql.errors import ExecutionError

from .llama_runtime import _chunk_starts as chunk_starts
from .output_head import HiddenTap, OutputHead

CHUNK = 16  # tokens of one stream per decode: a row's ~38 tokens pad to 48, not to 64
# KV cells a stream holds (the head, a row, its padding and its answer), whatever the
# model's context (llama.cpp rounds a stream's cells up to a multiple of 256): every
# stream's cells are allocated up front, and streams of the whole context cost the bundled
# Gemma 365 MB at n_ctx 2048 and 1339 MB at 8192 (bench/stream_memory.py). A row that does
# not fit goes one row at a time (fits_stream).
STREAM_CELLS = 1024


@dataclass
class _Step:
    """One piece a stream decodes: its tokens from ``pos``, and where to cut after."""

    tokens: list[int]
    pos: int
    keep: int  # positions kept after the decode (the filler removed)


@dataclass
class _Row:
    index: int
    steps: list[_Step]  # the last one's output gives the labels' logits


class BatchScorer:
    """A second llama.cpp context on the runtime's model: ``slots`` streams of ``n_ctx``.

    Label scoring is :meth:`score`; batch_generator.py generates in the same streams
    through :meth:`use_head`, :meth:`decode`, :meth:`logits` and :meth:`reset`."""

    def __init__(
        self, model, n_vocab: int, n_ctx: int, slots: int, threads: int, head: OutputHead | None
    ):
        self.slots, self.n_vocab = slots, n_vocab
        self.n_ctx = n_ctx  # a stream's positions, padding included
        p = llama_cpp.llama_context_default_params()
        p.n_ctx, p.n_seq_max, p.kv_unified = (n_ctx + CHUNK) * (slots + 1), slots + 1, False
        p.n_batch = p.n_ubatch = slots * CHUNK
        p.n_threads = p.n_threads_batch = threads
        p.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        # the runtime's output head (output_head.py), and the tap that stops a decode for it
        self.out_head, self.tap = head, HiddenTap() if head is not None else None
        if self.tap is not None:
            p.cb_eval, p.cb_eval_user_data = self.tap.callback, None
        self.ctx = llama_cpp.llama_init_from_model(model, p)
        if not self.ctx:
            raise ExecutionError(f"cannot allocate a batched context of {slots} rows")
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(slots * CHUNK, 0, slots + 1)
        self.head: list[int] = []

    def set_threads(self, n: int) -> None:
        llama_cpp.llama_set_n_threads(self.ctx, n, n)

    def score(
        self, rows: list[tuple[list[int], int]], labels: list[int]
    ) -> list[tuple[list[float], int]]:
        """(logit of each label, head tokens reused) of each ``(tokens, head length)``.

        Rows are taken in groups of one head (in their order); a new head is prefilled
        once. A label is its one token (" " + label, as the grammar writes it)."""
        out: dict[int, tuple[list[float], int]] = {}
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (tokens, head_len) in enumerate(rows):
            groups.setdefault(tuple(tokens[:head_len]), []).append(i)
        for head, members in groups.items():
            reused = self.use_head(list(head))
            for n, (i, scores) in enumerate(self._score_group(rows, members, labels)):
                out[i] = (scores, len(head) if n or reused else 0)
        return [out[i] for i in range(len(rows))]

    def _score_group(self, rows, members: list[int], labels: list[int]):
        tapped = self.out_head is not None
        head_len, pad = len(self.head), self.head[-1]
        queue = [_Row(i, row_pieces(rows[i][0], head_len)) for i in members]
        queue.reverse()
        slots: list[_Row | None] = [None] * self.slots
        while queue or any(s is not None for s in slots):
            for j in range(self.slots):
                if slots[j] is None and queue:
                    slots[j] = queue.pop()
            items: list[tuple[int, int, int, bool]] = []
            wanted: dict[int, int] = {}
            for j, row in enumerate(slots):
                if row is None:
                    items += [(pad, head_len + k, j + 1, k == CHUNK - 1) for k in range(CHUNK)]
                    continue
                step = row.steps[0]
                n = len(step.tokens)
                wanted[j] = len(items) + n - 1
                items += [
                    (step.tokens[k] if k < n else pad, step.pos + k, j + 1, k == n - 1)
                    for k in range(CHUNK)
                ]
            # with an output head every decode stops at the final norm (the labels' logits
            # come from the head); without one, a decode no row reads from does too
            read = any(len(slots[j].steps) == 1 for j in wanted)
            self.decode(items, hidden=self.tap is not None and (tapped or not read))
            for j, row in enumerate(slots):
                if row is None:
                    self.reset(j + 1)
                    continue
                step = row.steps.pop(0)
                if row.steps:
                    self.drop(j + 1, step.keep)
                    continue
                scores = (
                    self.out_head.logits(self.tap.hidden[j], labels)  # stream j's one output
                    if tapped
                    else self.logits(wanted[j])[labels]
                )
                self.reset(j + 1)
                slots[j] = None
                yield row.index, scores.tolist()

    def decode(
        self, items: list[tuple[int, int, int, bool]], hidden: bool = False, full: bool = False
    ) -> None:
        """One llama_decode of ``(token, position, stream, wants logits)`` items; with
        ``hidden`` the outputs' final-norm states instead (``tap.hidden``, output_head.py),
        and with ``full`` as well the logits (the output layer still runs)."""
        b = self.batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.seq_id[i][0] = token, pos, 1, seq
            b.logits[i] = logits
        tap = self.tap
        if tap is not None:
            tap.armed, tap.stop, tap.hidden = hidden, not full, None
        try:
            failed = llama_cpp.llama_decode(self.ctx, b) != 0
        finally:
            if tap is not None:
                tap.armed, tap.stop = False, True
        if tap is not None:
            tap.raise_pending()
        if failed:
            raise ExecutionError("llama_decode failed in the batched context")
        if hidden and (tap is None or tap.hidden is None):
            raise ExecutionError("the batched decode kept no final-norm state")

    def logits(self, item: int) -> np.ndarray:
        """The logits the last decode gave for its ``item``-th item."""
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, item)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def use_head(self, head: list[int]) -> bool:
        """Every stream holding ``head`` alone; True where it already held it."""
        if head == self.head:
            return True
        self._prefill_head(head)
        return False

    def _prefill_head(self, head: list[int]) -> None:
        """The head in stream 0, in chunks of CHUNK from its start, for every stream."""
        llama_cpp.llama_memory_clear(self.mem, True)
        self.head = []
        bounds = [*chunk_starts([0], len(head), CHUNK), len(head)]
        for a, e in zip(bounds[:-1], bounds[1:], strict=True):
            self.decode([(head[k], k, 0, False) for k in range(a, e)])
        for seq in range(1, self.slots + 1):
            llama_cpp.llama_memory_seq_cp(self.mem, 0, seq, -1, -1)
        self.head = head

    def reset(self, seq: int) -> None:
        """Stream ``seq`` as stream 0 holds it: the head alone."""
        self.drop(seq, len(self.head))

    def drop(self, seq: int, start: int) -> None:
        """Stream ``seq``'s positions from ``start`` on removed (filler, a finished row)."""
        llama_cpp.llama_memory_seq_rm(self.mem, seq, start, -1)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)


def streams_of(rt) -> BatchScorer:
    """The runtime's batched context, allocated on its first batched row: ``batch_rows``
    streams, or ``step_rows`` where rows go one at a time (shared_steps.py)."""
    if rt._scorer is None:
        slots = rt.batch_rows if rt.batch_rows > 1 else rt.step_rows
        rt._scorer = BatchScorer(
            rt._llm._model.model, rt.n_vocab, stream_tokens(rt), slots, rt._applied_threads, rt.head
        )
    return rt._scorer


def stream_tokens(rt) -> int:
    """The positions a stream of ``rt``'s batched context holds, its padding aside."""
    return min(rt.n_ctx, STREAM_CELLS - CHUNK)


def fits_stream(rt, tokens: list[int], answer_tokens: int) -> bool:
    """Whether a prompt of ``tokens`` and its answer fit a stream; a row that does not goes
    one row at a time in the runtime's own context. Its own length decides, never its mates:
    rows that fit get the same bits in streams of any size (bench/stream_memory.py)."""
    return len(tokens) + answer_tokens <= stream_tokens(rt)


def head_length(tokens: list[int], segments: list[int]) -> int:
    """The shared head of a prompt: its first segment, at least one token short of it."""
    head = segments[1] if len(segments) > 1 else len(tokens) - 1
    return min(head, len(tokens) - 1)


def row_pieces(tokens: list[int], head_len: int) -> list[_Step]:
    """A row's tokens after the head in pieces of CHUNK counted from the head's end; the
    last one gives the next-token distribution after the row."""
    end = len(tokens)
    return [
        _Step(tokens[a : a + CHUNK], a, min(a + CHUNK, end)) for a in range(head_len, end, CHUNK)
    ]
