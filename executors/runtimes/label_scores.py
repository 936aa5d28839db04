"""Whole-label log-probabilities of a closed set (bool, options) on the in-process model.

Each label is scored whole: its tokens (" " + label, as the grammar writes it) one after
another, each given the prompt and the label's earlier tokens, summed. Labels sharing
leading tokens share those steps; most label sets here are one token each, so the
prompt's own forward pass answers all of them.

Two recipes, chosen per runtime (``LlamaRuntime.batch_rows``) and named in the result-
cache key, since they give different numbers: :func:`one_row` runs a row in the
runtime's own context, reusing the KV prefix of the previous prompt chunk by chunk;
:func:`batched` puts ``batch_rows`` rows in every decode of a second context
(batch_scorer.py). Each recipe gives a row the same numbers whatever ran before or
beside it. Both are called with the runtime's lock held.
"""

from __future__ import annotations

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .runtime import Scored

ONE_FIELD = 3  # segments of a one-field prompt: the head, the field, the answer cue


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
    from .llama_runtime import _log_softmax

    head = rt.head
    cached = rt._prefill(tokens, segments, hidden=head is not None)
    base = len(tokens)
    firsts = sorted({seq[0] for seq in seqs})
    if head is not None:
        first = head.logits(rt._tap.hidden[-1], firsts)
    else:
        first = rt._logits()[firsts]
    steps = {(): dict(zip(firsts, first.tolist(), strict=True))}
    extra = 0
    scores = []
    for seq in seqs:
        total = 0.0
        for k, token in enumerate(seq):
            prefix = tuple(seq[:k])
            if prefix not in steps:
                _extend(rt, base, list(prefix))
                extra += 1
                steps[prefix] = _log_softmax(rt._logits())
            total += float(steps[prefix][token])
        scores.append(total)
    return Scored(scores, len(tokens), cached, extra)


def _extend(rt, base: int, tokens: list[int]) -> None:
    """Put ``tokens`` right after the prompt's ``base`` tokens in the KV cache, keeping
    what already matches, one token per step (as generation decodes)."""
    llm = rt._llm
    have = llm.input_ids[base : llm.n_tokens].tolist()
    keep = 0
    while keep < min(len(have), len(tokens) - 1) and have[keep] == tokens[keep]:
        keep += 1
    if llm.n_tokens > base + keep:
        llm._ctx.kv_cache_seq_rm(-1, base + keep, -1)
        llm.n_tokens = base + keep
    for token in tokens[keep:]:
        rt._decode([token], logits=True)


def batched(rt, prompts: list, out_type: OutputType) -> list[Scored]:
    """Rows ``rt.batch_rows`` to a decode; the head is the prompt's first segment (the
    instructions, examples and question every row of an operator shares).

    A prompt of several non-empty fields goes one row at a time instead: a stream keeps
    only the head, so rows sharing leading fields (the planner's GGR prefix order) would
    recompute them, where the runtime's own context reuses them from the row before. The
    recipe follows from the prompt alone, so a row's scores still never depend on others."""
    from .batch_scorer import head_length, streams_of

    seqs = _sequences(rt, out_type)
    longest = max(len(q) for q in seqs)
    extra = len({tuple(q[:k]) for q in seqs for k in range(1, len(q))})
    rows, batch, out = [], [], {}
    for i, prompt in enumerate(prompts):
        tokens, segments = _tokens(rt, prompt, longest)
        if len(segments) > ONE_FIELD:
            out[i] = _one_row(rt, tokens, segments, seqs)
            continue
        rows.append((tokens, head_length(tokens, segments)))
        batch.append(i)
    scored = streams_of(rt).score(rows, seqs) if rows else []
    for i, (tokens, _), (logprobs, cached) in zip(batch, rows, scored, strict=True):
        out[i] = Scored(logprobs, len(tokens), cached, extra)
    return [out[i] for i in range(len(prompts))]
