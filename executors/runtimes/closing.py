"""Which tokens bring an answer to its end, for the second half of the token budget.

Tiny models repeat themselves inside open text until the token budget runs out, which
would leave a string, list or object unfinished. Past half the budget the runtime
restricts the grammar's allowed tokens to those that close what is open, when the
grammar allows any: inside a JSON string the ones that end the string, outside strings
the ones that close a bracket or brace before opening anything. A token merely holding
a ``]`` inside a string closes nothing, so one mask for all closing characters is not
enough: a random walk then keeps writing ``]`` into a string until the budget is gone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_OPENERS_AND_CLOSERS = frozenset(b'"[]{}')


def _ends_string(piece: bytes) -> bool:
    """The piece holds a quote not escaped within the piece (a string's end)."""
    escaped = False
    for byte in piece:
        if escaped:
            escaped = False
        elif byte == 0x5C:  # backslash
            escaped = True
        elif byte == 0x22:  # quote
            return True
    return False


def _closes_bracket(piece: bytes) -> bool:
    """Outside strings: the first structural character of the piece is ``]`` or ``}``."""
    for byte in piece:
        if byte in _OPENERS_AND_CLOSERS:
            return byte in b"]}"
    return False


def inside_string(text: bytes) -> bool:
    """Whether JSON-like ``text`` ends inside an open double-quoted string."""
    inside = escaped = False
    for byte in text:
        if escaped:
            escaped = False
        elif inside and byte == 0x5C:
            escaped = True
        elif byte == 0x22:
            inside = not inside
    return inside


@dataclass(frozen=True)
class ClosingTokens:
    """Masks over the vocabulary (stop tokens belong to both: they end everything)."""

    string_end: np.ndarray
    bracket_end: np.ndarray

    @classmethod
    def of(cls, pieces: list[bytes], stop_mask: np.ndarray) -> ClosingTokens:
        string_end = np.array([_ends_string(p) for p in pieces]) | stop_mask
        bracket_end = np.array([_closes_bracket(p) for p in pieces]) | stop_mask
        return cls(string_end, bracket_end)

    @property
    def any(self) -> np.ndarray:
        return self.string_end | self.bracket_end

    def after(self, text: bytes) -> np.ndarray:
        """The tokens that close what ``text`` (the answer so far) leaves open."""
        return self.string_end if inside_string(text) else self.bracket_end
