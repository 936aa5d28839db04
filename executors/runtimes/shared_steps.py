"""Generated answers of many rows on a runtime that prefills a row alone: each row's prompt
is decoded on its own, and the rows' answer tokens share fixed-shape step decodes.

A generated answer costs its prompt's prefill plus one decode per answer token, and each
of those decodes computes the output layer of the whole vocabulary (262k entries for
Gemma 3). Where wide prompt decodes do not pay (CPUs without AMX, where rows go one at
a time: cpu_backend.default_batch_rows), sharing the answer steps still does. The rows
take the streams of the batched context (batch_scorer.py, ``STEP_ROWS`` of them):

* a row's prompt after the shared head is decoded alone in its stream, in chunks of
  ``PREFILL_CHUNK`` from the head's end, with one output: no padding, and the same
  chunks whatever else runs; where its first answer token cannot end the answer and
  has few candidates (an int's digits), only their logits are computed (greedy.py
  ``head_tokens``, output_head.py);
* where the grammar all but fixes the first answer token (an int's leading space, which
  only a minus sign contests: greedy.py ``lookahead``), the prompt's decode takes it
  along with a second output, so a row that chooses it has the logits of its second
  token at once and needs one step decode fewer (bench/generation_recipes.py); a row
  that chooses otherwise drops that cell and goes on as before;
* its answer tokens go in **step decodes of one token for every stream**, a fixed shape
  (an idle stream decodes a filler token, removed afterwards), which serve every row then
  answering; the same :class:`~.greedy.GreedyDecoder` as one row at a time picks them,
  from the few allowed tokens' logits through the head where its own grammar allows
  (batch_generator.decode_reading), else from the whole vocabulary's.

So a row's answer depends on its own tokens only: every logits vector it is chosen from is
the same bit for bit in any order, split or alone (tests/test_batched_generation.py; steps
only as wide as the rows answering broke that for most rows alone,
bench/generation_recipes.py). A row alone pays a full step decode per answer token
(about 4 lone-row steps), so the LM executor routes here only the rows of LM map and
filter tasks, handed over many at a time; one-answer calls (LLMQA) stay one row at a time.
Prompts of several non-empty fields go one row at a time in the runtime's own context, as
in batch_generator.py, so GGR prefix sharing keeps serving their leading fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from semql.grammar.types import OutputType

from .batch_generator import decode_reading, in_streams, read_step, reads_of
from .greedy import GreedyDecoder
from .runtime import Generation

STEP_ROWS = 8  # streams a step decode serves (bench/generation_recipes.py)


@dataclass
class _Row:
    index: int
    tokens: list[int]
    decoder: GreedyDecoder
    cached: int
    ahead: int | None  # the answer's all but certain first token (greedy.py lookahead)
    token: int | None = None  # the answer token to append next
    end: int = 0  # positions the row's stream holds


def generate(rt, prompts: list, out_type: OutputType) -> list[Generation]:
    """Greedy answers of ``prompts``, their answer steps shared (lock held)."""
    budget = out_type.token_budget()
    ahead: list[int | None] = []

    def row(i: int, tokens: list[int], head_len: int, cached: int) -> _Row:
        decoder = GreedyDecoder(rt, out_type, budget)
        if not ahead:  # the grammar's, so every row's: asked of the first, fresh decoder
            ahead.append(decoder.lookahead())
        return _Row(i, tokens, decoder, cached, ahead[0])

    return in_streams(rt, prompts, out_type, row, _run)


def _prompt(streams, row: _Row, seq: int) -> None:
    """The row's tokens after the head, alone in stream ``seq``; its first answer token,
    and where the grammar all but fixes that token (greedy.py ``lookahead``) the one after
    it, from the same decode."""
    from .llama_runtime import PREFILL_CHUNK

    tokens, start, n = row.tokens, len(streams.head), len(row.tokens)
    # the row's own grammar decides, never its mates; streams opened without the head
    # (a runtime whose head was off then) keep the full layer
    few = row.decoder.head_tokens() if streams.tap is not None else None
    ahead = row.ahead if few is not None else None
    if ahead is not None:
        tokens = [*tokens, ahead]
    hidden = []
    for a in range(start, len(tokens), PREFILL_CHUNK):
        piece = tokens[a : a + PREFILL_CHUNK]
        items = [(t, a + k, seq, a + k >= n - 1) for k, t in enumerate(piece)]
        reads = items[-1][3]
        streams.decode(items, hidden=reads and few is not None)
        if reads and few is not None:
            hidden += list(streams.tap.hidden)
    row.end = n
    if few is None:
        row.token = row.decoder.step(streams.logits(len(piece) - 1))
        return
    row.token = row.decoder.step_hidden(few, hidden[0])
    if ahead is None:
        return
    if row.token != ahead:  # the model chose otherwise: the looked-ahead cell goes
        streams.drop(seq, n)
        return
    row.end = n + 1
    row.token = row.decoder.step_hidden(row.decoder.head_tokens(), hidden[1])


def _run(streams, rows: list[_Row]):
    """Decode ``rows`` (their head in place), yielding each when its answer is done.

    A stream that frees takes the next row at once: its prompt runs alone, and it joins
    the next step decode."""
    head_len, pad = len(streams.head), streams.head[-1]
    queue = list(reversed(rows))
    slots: list[_Row | None] = [None] * streams.slots
    while queue or any(s is not None for s in slots):
        for j in range(streams.slots):
            while slots[j] is None and queue:
                row = queue.pop()
                _prompt(streams, row, j + 1)
                if row.token is None:
                    streams.reset(j + 1)
                    yield row
                else:
                    slots[j] = row
        if all(s is None for s in slots):
            continue
        reads = reads_of(streams, {j: r.decoder for j, r in enumerate(slots) if r is not None})
        items = [
            (row.token, row.end, j + 1, True) if row is not None else (pad, head_len, j + 1, True)
            for j, row in enumerate(slots)
        ]
        decode_reading(streams, items, reads)
        for j, row in enumerate(slots):
            if row is None:
                streams.reset(j + 1)  # the filler goes
                continue
            row.end += 1
            row.token = read_step(streams, row.decoder, j, j, reads[j])
            if row.token is None:
                streams.reset(j + 1)
                slots[j] = None
                yield row
