"""The base of SemQL's output types: a grammar as data, and what every type knows.

Every grammar starts with one space: prompts end with ``Answer:`` and tokenizers glue
the space to the next word (" yes"), which measured better than ending prompts in a space.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GrammarSpec:
    """A grammar as data. ``kind`` is 'ebnf', 'regex' or 'json_schema'."""

    kind: str
    source: str


_EBNF_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def ebnf_string(text: str) -> str:
    """Quote ``text`` as an EBNF string literal (xgrammar / GBNF escaping)."""
    return '"' + "".join(_EBNF_ESCAPES.get(ch, ch) for ch in text) + '"'


class OutputType:
    """Base of all output types."""

    name: str = "?"
    duckdb_type: str = "VARCHAR"

    def spec(self) -> GrammarSpec:
        raise NotImplementedError

    def parse(self, text: str):
        raise NotImplementedError

    def render(self, value) -> str:
        """How a value of this type is written in a prompt (few-shot answers)."""
        return str(value)

    def hint(self) -> str:
        """A short instruction that tells the model the answer format."""
        return ""

    def labels(self) -> list[str] | None:
        """For closed sets: every admissible answer text (after the leading space)."""
        return None

    def token_budget(self) -> int:
        """Most output tokens a complete answer can need (grammars here are bounded)."""
        return 64

    def __str__(self) -> str:
        return self.name


def strip_space(text: str) -> str:
    """The answer without the space every grammar starts with."""
    return text[1:] if text.startswith(" ") else text
