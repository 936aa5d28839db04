"""Generated answers (ints, numbers, text, JSON) of many prompts at once, each row's tokens
independent of its batch mates.

Rows share the streams of the batched context that label scoring uses (batch_scorer.py),
with the same rules for the prompt: the head prefilled once and copied, a row's tokens in
pieces of CHUNK from the head's end, padded with filler, every stream one output each
decode. Generation adds one more fixed shape: a **step** decode of one token per stream,
in which a row in its answer appends its last chosen token and reads the next logits.
A stream with no answer token to add (a row still in its prompt, or no row) decodes one
filler token there, removed afterwards. So a row's prompt pieces always run in
``slots x CHUNK`` decodes and its answer tokens always in ``slots x 1`` decodes, whatever
its mates do, and the same :class:`~.greedy.GreedyDecoder` as one row at a time picks its
tokens from those logits: its answer depends on its own tokens only.

Rows run in waves of ``slots`` rows, prompts first and then all answers together, so a
step decode serves every row of the wave: a step decode where a row needs the whole
vocabulary costs about two lone-row tokens (an output of the 262k-token vocabulary for
every stream), and run as soon as any row reached its answer, step decodes served one or
two rows each and gave back most of the gain (docs/benchmarks.md). Where no row reads a
decode's outputs, or every row that does needs only a few tokens' logits, the decode
stops at the final norm (:func:`decode_reading`, output_head.py). Prompts of several
non-empty fields go one row at a time, as in label scoring (label_scores.py), so GGR
prefix sharing keeps serving their fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .greedy import GreedyDecoder
from .label_scores import ONE_FIELD
from .runtime import Generation


@dataclass
class _Row:
    index: int
    tokens: list[int]
    steps: list  # the prompt pieces still to decode (batch_scorer._Step)
    decoder: GreedyDecoder
    cached: int
    token: int | None = None  # the answer token to append next (in the answer)
    end: int = 0  # positions the row's stream holds


def generate(rt, prompts: list, out_type: OutputType) -> list[Generation]:
    """Greedy answers of ``prompts``, ``rt.batch_rows`` rows to a decode (lock held)."""
    from .batch_scorer import row_pieces

    budget = out_type.token_budget()

    def row(i: int, tokens: list[int], head_len: int, cached: int) -> _Row:
        decoder = GreedyDecoder(rt, out_type, budget)
        return _Row(i, tokens, row_pieces(tokens, head_len), decoder, cached)

    return in_streams(rt, prompts, out_type, row, _run)


def in_streams(rt, prompts: list, out_type: OutputType, make_row, run) -> list[Generation]:
    """Answers of ``prompts`` whose rows (``make_row(index, tokens, head length, cached
    tokens)``) ``run(streams, rows)`` decodes in the batched context's streams, a group
    of one head at a time; prompts of several fields one row at a time (:func:`by_head`)."""
    from .batch_scorer import streams_of

    out, groups = by_head(rt, prompts, out_type)
    if groups:
        streams = streams_of(rt)
        for head, members in groups.items():
            reused = streams.use_head(list(head))
            rows = [
                make_row(i, tokens, len(head), len(head) if n or reused else 0)
                for n, (i, tokens) in enumerate(members)
            ]
            for done in run(streams, rows):
                out[done.index] = done.decoder.generation(len(done.tokens), done.cached)
    return [out[i] for i in range(len(prompts))]


def decode_reading(streams, items: list, reads: dict[int, list[int] | None]) -> None:
    """Decode ``items``, of which the rows of the streams in ``reads`` read their output:
    each the logits of the few tokens it may choose (greedy.py ``head_tokens``), or None
    for the whole vocabulary's. The output layer runs only where some row needs all of it;
    where none does, the decode stops at the final norm and the output head computes the
    few logits (output_head.py), the same numbers whoever shares the decode."""
    if streams.tap is None:
        streams.decode(items)
        return
    full = any(few is None for few in reads.values())
    hidden = not reads or any(few is not None for few in reads.values())
    streams.decode(items, hidden=hidden, full=full and hidden)


def read_step(streams, decoder: GreedyDecoder, j: int, item: int, few: list[int] | None):
    """The next token of the row in stream ``j`` (its output the decode's ``item``-th
    item) after :func:`decode_reading`: from its few tokens' logits where it asked for
    them, else from the whole vocabulary's."""
    if few is None:
        return decoder.step(streams.logits(item))
    return decoder.step_hidden(few, streams.tap.hidden[j])  # stream j's one output


def reads_of(streams, decoders: dict[int, GreedyDecoder]) -> dict[int, list[int] | None]:
    """What each stream's row reads from the next decode (:func:`decode_reading`); the
    row's own grammar decides, never its mates. Without a head, the whole vocabulary."""
    if streams.tap is None:
        return {j: None for j in decoders}
    return {j: d.head_tokens() for j, d in decoders.items()}


def by_head(
    rt, prompts: list, out_type: OutputType
) -> tuple[dict[int, Generation], dict[tuple[int, ...], list[tuple[int, list[int]]]]]:
    """Prompts of several fields answered one row at a time (by index), and the others'
    ``(index, tokens)`` grouped by their shared head, for the streams.

    A stream keeps only the head, so rows sharing leading fields (the planner's GGR
    prefix order) would recompute them there, where the runtime's own context reuses
    them from the row before; the recipe follows from the prompt alone."""
    from .batch_scorer import fits_stream, head_length

    max_tokens = out_type.token_budget()
    out: dict[int, Generation] = {}
    groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    for i, prompt in enumerate(prompts):
        tokens, segments = rt.tokenize_segments(prompt)
        if len(tokens) + max_tokens > rt.n_ctx:
            raise ExecutionError(
                f"prompt of {len(tokens)} tokens plus {max_tokens} output tokens exceeds the "
                f"model context of {rt.n_ctx} tokens (model {rt.path})"
            )
        if len(segments) > ONE_FIELD or not fits_stream(rt, tokens, max_tokens):
            out[i] = rt._generate_tokens(tokens, segments, out_type, max_tokens)
            continue
        head = tuple(tokens[: head_length(tokens, segments)])
        groups.setdefault(head, []).append((i, tokens))
    return out, groups


def _run(streams, rows: list[_Row]):
    """Decode ``rows`` in the streams (their head in place), yielding each when done.

    Rows go in waves of ``slots``: their prompt pieces first (a row whose pieces ran out
    waits with filler), then step decodes until the last answer ends; the next wave
    starts once no row is answering."""
    from .batch_scorer import CHUNK

    head_len, pad = len(streams.head), streams.head[-1]
    queue = list(reversed(rows))
    slots: list[_Row | None] = [None] * streams.slots
    while queue or any(s is not None for s in slots):
        if not any(r is not None and not r.steps for r in slots):  # a new wave
            for j in range(streams.slots):
                if slots[j] is None and queue:
                    slots[j] = queue.pop()
        # prompt pieces while any row has one left, then the rows' answers together
        stepping = not any(r is not None and r.steps for r in slots)
        items: list[tuple[int, int, int, bool]] = []
        wanted: dict[int, int] = {}
        for j, row in enumerate(slots):
            seq = j + 1
            if stepping:  # a step decode: one token a stream
                if row is not None and not row.steps:
                    wanted[j] = len(items)
                    items.append((row.token, row.end, seq, True))
                else:
                    pos = row.steps[0].pos if row is not None else head_len
                    items.append((pad, pos, seq, True))
                continue
            if row is None or not row.steps:  # no piece: filler after what it holds
                at = head_len if row is None else row.end
                items += [(pad, at + k, seq, k == CHUNK - 1) for k in range(CHUNK)]
                continue
            step = row.steps[0]
            n = len(step.tokens)
            wanted[j] = len(items) + n - 1
            items += [
                (step.tokens[k] if k < n else pad, step.pos + k, seq, k == n - 1)
                for k in range(CHUNK)
            ]
        # the rows that read this decode's output: in their answer, or at their prompt's end
        reading = [j for j in wanted if stepping or len(slots[j].steps) == 1]
        reads = reads_of(streams, {j: slots[j].decoder for j in reading})
        decode_reading(streams, items, reads)
        for j, row in enumerate(slots):
            seq = j + 1
            if row is None:
                streams.reset(seq)
                continue
            if stepping and row.steps:  # waited in its prompt: the filler goes
                streams.drop(seq, row.steps[0].pos)
                continue
            if not stepping and not row.steps:  # waited in its answer
                streams.drop(seq, row.end)
                continue
            if stepping:
                row.end += 1
            else:
                step = row.steps.pop(0)
                streams.drop(seq, step.keep)
                if row.steps:
                    continue
                row.end = step.keep
            row.token = read_step(streams, row.decoder, j, wanted[j], reads[j])
            if row.token is None:
                streams.reset(seq)
                slots[j] = None
                yield row
