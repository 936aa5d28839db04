"""One constrained greedy answer, a token at a time, whoever computes the logits.

The in-process runtime decodes a row alone in its own context (llama_runtime.py) or
with other rows in fixed-shape decodes (batch_generator.py). Both feed each step's logits
to a :class:`GreedyDecoder`, which alone decides the next token, so the two recipes
follow one set of rules:

* the xgrammar token bitmask is applied to every step's logits;
* where only end-of-text is allowed, the answer is complete;
* past half the token budget, tokens that close what is open are preferred (tiny models
  otherwise repeat until the budget runs out and leave the grammar unfinished);
* where the answer may end and the model's own best token leaves the grammar (" stars"
  after "100", a newline), the value is done: forcing the best allowed token instead
  wrote "100" on as "1000000";
* a closed set ends as soon as the decoded prefix fits exactly one label: greedy
  decoding under the same grammar could only complete that label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import xgrammar as xgr

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .runtime import Generation

_recorders: list[list] = []  # open recording() lists, innermost last
# The most tokens a step computes with the output head instead of the whole vocabulary's
# layer: an int's digits, a closed set's labels, a JSON key's next characters.
HEAD_TOKENS = 256
# How far :meth:`GreedyDecoder.lookahead` follows the text that every answer starts with.
FORCED_BYTES = 4


@contextmanager
def recording() -> Iterator[list]:
    """The decoders made inside, in order; each keeps in ``trace`` a digest of every
    logits vector it chose a token from. How a recipe is checked to give a row the same
    numbers bit for bit whatever rows run beside it (tests/test_batched_generation.py,
    bench/generation_recipes.py)."""
    made: list = []
    _recorders.append(made)
    try:
        yield made
    finally:
        _recorders.remove(made)


class GreedyDecoder:
    """``step(logits)``: the next token to decode, or None once the answer is complete."""

    def __init__(self, rt, out_type: OutputType, max_tokens: int):
        self.trace: list[str] | None = None
        if _recorders:
            self.trace = []
            _recorders[-1].append(self)
        self._rt = rt
        self._out_type = out_type
        self._max_tokens = max_tokens
        self._matcher = xgr.GrammarMatcher(rt.compiled(out_type.spec()))
        self._labels = out_type.labels() if rt.closed_set_fast_path else None
        self._bitmask = xgr.allocate_token_bitmask(1, rt.n_vocab)
        self._out = bytearray()
        self._next: np.ndarray | None = None
        self.generated = 0

    def text(self) -> str:
        return self._out.decode("utf-8", errors="replace")

    def generation(self, prompt_tokens: int, cached: int) -> Generation:
        """The finished answer as a runtime returns it."""
        return Generation(self.text(), prompt_tokens, cached, self.generated)

    def _allowed(self) -> np.ndarray:
        """The tokens the grammar allows next (kept until a token is accepted: both
        :meth:`head_tokens` and :meth:`step` ask)."""
        if self._next is None:
            self._matcher.fill_next_token_bitmask(self._bitmask)
            bits = self._bitmask.numpy().view(np.uint8)
            self._next = np.unpackbits(bits, bitorder="little")[: self._rt.n_vocab].astype(bool)
        return self._next

    def head_tokens(self) -> list[int] | None:
        """The tokens whose logits alone decide the next step, where the runtime has an
        output head (output_head.py), they are at most ``HEAD_TOKENS`` and the answer cannot
        end there; None where the step needs the whole vocabulary's logits: where the answer
        may end, the model's own best token over all of it decides whether it does."""
        if self._rt.head is None or self.generated >= self._max_tokens:
            return None
        allowed = self._allowed()
        if allowed[self._rt._stops].any():
            return None
        tokens = np.flatnonzero(allowed)
        return tokens.tolist() if len(tokens) <= HEAD_TOKENS else None

    def lookahead(self) -> int | None:
        """The token the answer all but surely starts with, which the prompt's own decode
        can take along (shared_steps.py), saving the row a step decode: the tokenizer's
        own first token for the text every answer starts with (an int's leading space,
        contested only by " -"; a string's ' "'), where both its step and the step after
        it are decided by the output head. None elsewhere: for a string, whose next step
        needs the whole vocabulary, and for a closed set, whose labels are scored and whose
        first token is a label's own (" true", not " "). The grammar alone decides, the
        same for every row of an operator.
        """
        if self.generated or self._max_tokens < 2 or self._out_type.labels() is not None:
            return None
        if self.head_tokens() is None:
            return None
        text = self._forced_text()
        if not text:
            return None
        token = self._rt.text_tokens(text)[0]
        if not self._allowed()[token]:
            return None
        return token if self._head_after(token) else None

    def _forced_text(self) -> bytes:
        """The first bytes every answer the grammar allows starts with: while all allowed
        tokens start with one byte and that byte's own token is allowed, it and what
        follows it (up to FORCED_BYTES)."""
        rt, text, taken = self._rt, b"", 0
        try:
            while len(text) < FORCED_BYTES:
                firsts = rt._first_bytes[self._allowed()]
                if not len(firsts) or firsts[0] > 255 or (firsts != firsts[0]).any():
                    break
                text += bytes([firsts[0]])
                own = rt.text_tokens(text[-1:])
                if len(own) != 1 or not self._allowed()[own[0]]:
                    break
                if not self._matcher.accept_token(own[0]):
                    break
                self._next = None
                taken += 1
        finally:
            self._matcher.rollback(taken)
            self._next = None
        return text

    def _head_after(self, token: int) -> bool:
        """Whether the step after ``token`` would be decided by the output head."""
        self._matcher.accept_token(token)
        self._next = None
        self.generated += 1
        try:
            return self.head_tokens() is not None
        finally:
            self.generated -= 1
            self._matcher.rollback(1)
            self._next = None

    def step_hidden(self, tokens: list[int], hidden: np.ndarray) -> int | None:
        """:meth:`step` from the final-norm state ``hidden`` with only the logits of
        :meth:`head_tokens`: the same token, since no other token is allowed and the
        answer cannot end."""
        logits = np.full(self._rt.n_vocab, -np.inf, dtype=np.float32)
        logits[tokens] = self._rt.head.logits(hidden, tokens)
        return self.step(logits)

    def step(self, logits: np.ndarray) -> int | None:
        """The token to append after the answer so far, given the logits that follow it."""
        if self.trace is not None:
            self.trace.append(hashlib.sha256(logits.tobytes()).hexdigest())
        rt = self._rt
        if self.generated >= self._max_tokens:
            if not self._allowed()[rt._stops].any():
                raise ExecutionError(
                    f"output cut off after {self._max_tokens} tokens before the grammar of "
                    f"{self._out_type} was complete (model {rt.path})"
                )
            return None
        allowed = self._allowed()
        if not (allowed & ~rt._stop_mask).any():
            return None  # only end-of-text is allowed: the answer is complete
        if self.generated >= self._max_tokens // 2:
            closing = allowed & rt._closing.after(bytes(self._out))
            if closing.any():
                allowed = closing
        if allowed[rt._stops].any() and not allowed[int(logits.argmax())]:
            return None  # the answer may end here and the model's own token leaves it
        token = int(np.where(allowed, logits, -np.inf).argmax())
        if rt._stop_mask[token]:
            return None
        if not self._matcher.accept_token(token):
            raise ExecutionError(f"grammar rejected token {token} (model {rt.path})")
        self._next = None
        self._out += rt._pieces[token]
        self.generated += 1
        label = _determined(self._out, self._labels) if self._labels is not None else None
        if label is not None:
            self._out = bytearray(b" " + label.encode("utf-8"))
            return None
        return token


def _determined(out: bytearray, labels: list[str]) -> str | None:
    """The one label that the decoded prefix (after its leading space) can still become."""
    text = bytes(out[1:] if out[:1] == b" " else out).decode("utf-8", errors="ignore")
    if not out.startswith(b" "):
        return None
    fitting = [lab for lab in labels if lab.startswith(text)]
    return fitting[0] if len(fitting) == 1 else None
