"""Whole-label log-probabilities of a closed set (bool, options) on the in-process model.

Each label is scored whole: its tokens (" " + label, as the grammar writes it) one after
another, each given the prompt and the label's earlier tokens, summed. Labels sharing
leading tokens share those steps; most label sets here are one token each, so the
prompt's own forward pass answers all of them.

Two recipes, chosen per runtime (``LlamaRuntime.batch_rows``) and named in the result-
cache key, since they give different numbers: :func:`one_row` runs a row in the
runtime's own context, reusing the KV prefix of the previous prompt chunk by chunk, and
decodes its labels' later tokens together, each label prefix a sequence of that context
(:func:`_branch`); :func:`batched` puts ``batch_rows`` rows in every decode of a second
context (batch_scorer.py), for label sets of one token a label. Each recipe gives a row
the same numbers whatever ran before or beside it. Both are called with the runtime's lock held.
"""

from __future__ import annotations

import llama_cpp
import numpy as np

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .runtime import Scored

ONE_FIELD = 3  # segments of a one-field prompt: the head, the field, the answer cue
# Label prefixes decoded together as sequences of the runtime's context (_branch)
BRANCH_SEQS = 32


def _sequences(rt, out_type: OutputType) -> list[list[int]]:
    return [rt.label_tokens(label) for label in out_type.labels()]


def _tokens(rt, prompt: str, longest: int) -> tuple[list[int], list[int]]:
    tokens, segments = rt.tokenize_segments(prompt)
    if len(tokens) + longest > rt.n_ctx:
        raise ExecutionError(
            f"prompt of {len(tokens)} tokens plus {longest} label tokens exceeds the "
            f"model context of {rt.n_ctx} tokens (model {rt.path})"
        )
    return tokens, segments


def next_tokens(labels: list[list[int]]) -> dict[tuple[int, ...], list[int]]:
    """Each label prefix's next tokens: the only entries of its distribution read."""
    nexts: dict[tuple[int, ...], set[int]] = {}
    for seq in labels:
        for k in range(1, len(seq)):
            nexts.setdefault(tuple(seq[:k]), set()).add(seq[k])
    return {prefix: sorted(tokens) for prefix, tokens in nexts.items()}


def log_probs(logits: np.ndarray, tokens: list[int]) -> dict[int, float]:
    """The log-probabilities of ``tokens`` under the next-token ``logits`` (float64).

    Only a few entries are read, so the normaliser is summed in place over one copy of
    the vocabulary's logits: 0.4 ms for Gemma's 262k against 2 ms for a whole log-softmax
    array, the same numbers bit for bit."""
    z = logits.astype(np.float64)
    z -= z.max()
    picked = z[tokens]
    np.exp(z, out=z)
    return dict(zip(tokens, (picked - np.log(z.sum())).tolist(), strict=True))


def one_row(rt, prompt: str, out_type: OutputType) -> Scored:
    """A row alone in the runtime's context (its KV prefix reused chunk by chunk)."""
    seqs = _sequences(rt, out_type)
    tokens, segments = _tokens(rt, prompt, max(len(q) for q in seqs))
    return _one_row(rt, tokens, segments, seqs)


def _one_row(rt, tokens: list[int], segments: list[int], seqs: list[list[int]]) -> Scored:
    """A label's score is its first token's logit plus the log-probabilities of its later
    tokens: its log-probability plus the prompt's log-normaliser, which every label shares,
    so the labels' probabilities are those of their log-probabilities. The first tokens'
    logits come from the runtime's output head where it has one (output_head.py: no
    output layer over the whole vocabulary); a later token's log-probability needs it."""
    head = rt.head
    cached = rt._prefill(tokens, segments, hidden=head is not None)
    base = len(tokens)
    firsts = sorted({seq[0] for seq in seqs})
    if head is not None:
        first = head.logits(rt._tap.hidden[-1], firsts)
    else:
        first = rt._logits()[firsts]
    steps = {(): dict(zip(firsts, first.tolist(), strict=True))}
    nexts = next_tokens(seqs)
    prefixes = sorted(nexts)
    # a group's tokens take cells of their own after the prompt's: as many as fit
    for group in _groups(prefixes, min(rt._llm.n_batch, rt.n_ctx - base)):
        steps.update(_branch(rt, base, group, nexts))
    scores = [sum(float(steps[tuple(seq[:k])][t]) for k, t in enumerate(seq)) for seq in seqs]
    return Scored(scores, len(tokens), cached, len(prefixes))


def _groups(prefixes: list[tuple[int, ...]], room: int) -> list[list[tuple[int, ...]]]:
    """The label prefixes in decodes of at most BRANCH_SEQS sequences and ``room`` tokens
    (each prefix's ancestors included): fixed by the label set and, for a prompt within
    ``n_batch`` tokens of the context's end, the prompt's length, never other rows. A
    prefix's own tokens always fit (_tokens leaves room for the longest label)."""
    groups: list[list[tuple[int, ...]]] = [[]]
    for prefix in prefixes:
        group = groups[-1]
        if group and (len(group) == BRANCH_SEQS or len(_nodes(group + [prefix])) > room):
            groups.append(group := [])
        group.append(prefix)
    return groups if prefixes else []


def _nodes(group: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Every prefix of the group's prefixes, shortest first: the tree's nodes."""
    return sorted({p[:k] for p in group for k in range(1, len(p) + 1)}, key=lambda p: (len(p), p))


def _branch(
    rt, base: int, group: list[tuple[int, ...]], nexts: dict[tuple[int, ...], list[int]]
) -> dict[tuple[int, ...], dict[int, float]]:
    """The log-probabilities of each label prefix's next tokens (``nexts``) for the
    prefixes of ``group``, from one decode.

    Each prefix is a sequence of its own that shares the prompt's KV cells (the runtime's
    context holds ``BRANCH_SEQS + 1`` sequences in one unified cache); a token of the tree
    is one cell, in the sequences of every prefix that extends it, and each prefix's last
    token gives its output. One decode shares the fixed cost of a decode between the
    prefixes, where one a token paid it for each (``bench/label_sets.py``). The branches'
    cells are removed again however the decode ends, so the cache holds the prompt only."""
    llm, ctx = rt._llm, rt._llm._ctx.ctx
    mem = llama_cpp.llama_get_memory(ctx)
    seq_of = {prefix: s for s, prefix in enumerate(group, start=1)}
    nodes = _nodes(group)
    batch = llm._batch.batch
    batch.n_tokens = len(nodes)
    try:
        for s in seq_of.values():
            llama_cpp.llama_memory_seq_cp(mem, 0, s, 0, base)
        for i, node in enumerate(nodes):
            owners = [s for prefix, s in seq_of.items() if prefix[: len(node)] == node]
            batch.token[i], batch.pos[i] = node[-1], base + len(node) - 1
            batch.n_seq_id[i] = len(owners)
            for k, s in enumerate(owners):
                batch.seq_id[i][k] = s
            batch.logits[i] = node in seq_of
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise ExecutionError(f"llama_decode failed scoring label tokens (model {rt.path})")
        rt._tap.raise_pending()
        return {
            node: log_probs(
                np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), (rt.n_vocab,)),
                nexts[node],
            )
            for i, node in enumerate(nodes)
            if node in seq_of
        }
    finally:
        for s in seq_of.values():
            llama_cpp.llama_memory_seq_rm(mem, s, -1, -1)


def batched(rt, prompts: list, out_type: OutputType) -> list[Scored]:
    """Rows ``rt.batch_rows`` to a decode; the head is the prompt's first segment (the
    instructions, examples and question every row of an operator shares).

    Three kinds of rows go one row at a time instead; which follows from the prompt and
    the label set alone, so a row's scores still never depend on others:

    * every row of a label set with a label of several tokens: a stream would decode
      each label prefix as a further piece padded to 16 tokens, through the whole
      vocabulary's output layer, where one row at a time decodes them all in one decode
      (:func:`_branch`); batched ran such sets at 0.44-0.62x the rows/s (bench/
      label_sets.py, AMD EPYC with AVX-512, results/throughput/label-sets-20261207-170152);
    * a prompt of several non-empty fields: a stream keeps only the head, so rows sharing
      leading fields (the planner's GGR prefix order) would recompute them, where the
      runtime's own context reuses them from the row before;
    * a prompt longer than a stream (batch_scorer.STREAM_CELLS)."""
    from .batch_scorer import fits_stream, head_length, streams_of

    seqs = _sequences(rt, out_type)
    if next_tokens(seqs):
        return [_one_row(rt, *_tokens(rt, p, max(len(q) for q in seqs)), seqs) for p in prompts]
    rows, batch, out = [], [], {}
    for i, prompt in enumerate(prompts):
        tokens, segments = _tokens(rt, prompt, 1)
        if len(segments) > ONE_FIELD or not fits_stream(rt, tokens, 0):
            out[i] = _one_row(rt, tokens, segments, seqs)
            continue
        rows.append((tokens, head_length(tokens, segments)))
        batch.append(i)
    labels = [seq[0] for seq in seqs]
    scored = streams_of(rt).score(rows, labels) if rows else []
    for i, (tokens, _), (logprobs, cached) in zip(batch, rows, scored, strict=True):
        out[i] = Scored(logprobs, len(tokens), cached, 0)
    return [out[i] for i in range(len(prompts))]
