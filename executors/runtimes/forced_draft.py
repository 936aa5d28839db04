"""A row's generated answer, alone in the runtime's context, with the text its grammar
forces decoded as a draft.

After the answer cue an int's grammar forces a space, a date's a space, a JSON object's
``{"`` and each key. Decoded a token at a time, each such token costs a decode, and a
decode of one token is a pass over the whole model, the output layer of Gemma 3's
262k-token vocabulary included: about 16 ms on the AMD EPYC, against about 110 ms for
the row's whole prompt. So the tokens the tokenizer gives the forced text
(:meth:`GreedyDecoder.draft`) ride in the decode that comes anyway (the prompt's last
chunk, or the chosen token's step), with an output at each, and are kept as far as the
model's own greedy choice agrees with them: where it picks another token (``" -"`` where
the draft has ``" "``), the rest of the draft leaves the KV cache and its choice is
decoded instead. The tokens chosen are those of greedy decoding under the grammar
(greedy.py); which tokens share a decode is fixed by the row's own tokens and grammar,
so a row's answer still depends on nothing but the row.
"""

from __future__ import annotations

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .greedy import GreedyDecoder
from .runtime import Generation


def generate(
    rt, tokens: list[int], segments: list[int], out_type: OutputType, max_tokens: int
) -> Generation:
    """Greedy answer of one prompt's ``tokens`` (lock held; KV prefix reused by chunks)."""
    decoder = GreedyDecoder(rt, out_type, max_tokens)
    draft = decoder.draft()
    cached = rt._prefill(tokens, segments, draft)
    while True:
        back = len(draft)  # the outputs of the last decode, oldest first
        while True:
            token = decoder.step(rt._logits(back))
            if back == 0 or token != draft[-back]:
                break
            back -= 1
        if back:
            _drop(rt, back)  # the draft past the model's first other choice
        if token is None:
            break
        draft = decoder.draft()
        rt._decode([token, *draft], logits=True, outputs=len(draft) + 1)
    return Generation(decoder.text(), len(tokens), cached, decoder.generated)


def _drop(rt, n: int) -> None:
    """Remove the last ``n`` tokens from the runtime's KV cache."""
    llm = rt._llm
    llm.n_tokens -= n
    if not llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1):
        raise ExecutionError(f"llama.cpp could not drop {n} tokens (model {rt.path})")
