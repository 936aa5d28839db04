"""The prompt format, kept in one place: the executors render prompts with it, and the
planner sizes them with it (the cost model's token counts, the prefix layouts' shared
characters), so an estimate and the prompt it estimates cannot drift apart.

Layout: instruction and answer format, then few-shot examples, then the row's fields,
then ``Answer:``. Everything shared by the rows of one LM operator is a prefix, so the
KV cache of the previous prompt serves it. Base models (the bundled Gemma 270M) get a
completion-style prompt, which measured far better for them; instruct models get their
chat template with the same blocks, and the assistant turn opens with ``Answer:`` so
that every grammar can start with one space.

Field values are data, not instructions: each is written as a JSON string literal on
its field's line (newlines become spaces, quotes and backslashes are escaped, cut to a
bound), so a value can neither close its quotes nor start a line that looks like a new
field or a new ``Answer:``. NULL stays a bare ``NULL``, unlike the string ``"NULL"``
(bench/injection.py measures what injected text still does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from semql.grammar.types import OutputType

MAX_FIELD_CHARS = 1200
FIELD_OVERHEAD_CHARS = len(': ""\n')  # around a rendered field value, besides its name
ANSWER_CUE = "Answer:"
CONTEXT_SEPARATOR = "; "


def clean_value(value, max_chars: int | None = MAX_FIELD_CHARS) -> str:
    """One line of text; cut to ``max_chars`` (None: LLMQA contexts, fitted by tokens)."""
    if value is None:
        return "NULL"
    text = " ".join(str(value).split())
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text


def quote_value(value, max_chars: int | None = MAX_FIELD_CHARS) -> str:
    """A field value as the prompt shows it: a one-line JSON string, or NULL."""
    if value is None:
        return "NULL"
    return json.dumps(clean_value(value, max_chars), ensure_ascii=False)


def field_block(
    names: Sequence[str], values: Sequence, max_chars: int | None = MAX_FIELD_CHARS
) -> str:
    """The ``name: "value"`` lines of one row (also the text a proxy model embeds)."""
    return "\n".join(
        f"{name}: {quote_value(v, max_chars)}" for name, v in zip(names, values, strict=True)
    )


def _field_segments(row: str) -> list[str]:
    """The row block split after each field's line (the newline stays with the field)."""
    lines = row.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def instruction(question: str, out_type: OutputType) -> str:
    hint = out_type.hint()
    return f"Task: {question.strip()}" + (f"\n{hint}" if hint else "")


class Prompt(str):
    """A prompt and its segments: the shared head, then one segment per field, then the
    answer cue. The runtime evaluates (and reuses from the KV cache) whole segments, so a
    row that begins with the previous row's fields reuses exactly those fields."""

    segments: tuple[str, ...]

    def __new__(cls, segments: Sequence[str]) -> Prompt:
        text = super().__new__(cls, "".join(segments))
        text.segments = tuple(segments)
        return text


class PromptBuilder:
    """Renders prompts for one model style ('completion' or 'chat')."""

    def __init__(self, style: str, format_chat: Callable[[list[dict]], str] | None = None):
        self.style = style
        self.format_chat = format_chat

    def build(
        self,
        question: str,
        out_type: OutputType,
        names: Sequence[str],
        values: Sequence,
        examples: Sequence[tuple] = (),
        max_chars: int | None = MAX_FIELD_CHARS,
    ) -> str:
        """``max_chars``: the cut of each field value (None for an LLMQA context, which is
        fitted to the model's window in tokens instead)."""
        head = instruction(question, out_type)
        shots = [(field_block(names, ex[:-1]), out_type.render(ex[-1])) for ex in examples]
        row = field_block(names, values, max_chars)
        if self.style == "chat" and self.format_chat is not None:
            messages = [{"role": "system", "content": head}]
            for text, answer in shots:
                messages.append({"role": "user", "content": text})
                messages.append({"role": "assistant", "content": f"{ANSWER_CUE} {answer}"})
            messages.append({"role": "user", "content": row or head})
            text = self.format_chat(messages) + ANSWER_CUE
            at = text.rfind(row) if row else -1
            if at < 0:
                return Prompt([text])
            return Prompt([text[:at], *_field_segments(row), text[at + len(row) :]])
        parts = [head]
        parts += [f"{text}\nAnswer: {answer}" for text, answer in shots]
        if not row:
            return Prompt(["\n\n".join([*parts, ANSWER_CUE])])
        head_text = "\n\n".join(parts) + "\n\n"
        return Prompt([head_text, *_field_segments(row), "\n" + ANSWER_CUE])


def field_chars(name: str, value_chars: float) -> float:
    """Characters of one field's line in a prompt, for a value of this length."""
    return len(name) + FIELD_OVERHEAD_CHARS + min(value_chars, MAX_FIELD_CHARS)


def prompt_chars(
    question: str, out_type: OutputType, examples: Sequence[tuple], value_chars: dict[str, float]
) -> tuple[float, float]:
    """(characters every row's prompt shares, characters of one row's own part) of a
    completion-style prompt whose fields (name -> mean value length) are ``value_chars``."""
    names = list(value_chars)
    shared = len(instruction(question, out_type)) + 2
    for ex in examples:
        if len(ex) - 1 == len(names):
            text = field_block(names, ex[:-1])
        else:  # sized without the call's field names (a sample's mean row length)
            text = " ".join(quote_value(v) for v in ex[:-1])
        shared += len(text) + len(f"\n{ANSWER_CUE} {out_type.render(ex[-1])}\n\n")
    row = sum(field_chars(n, c) for n, c in value_chars.items()) + len(ANSWER_CUE)
    return float(shared), float(row)


def row_line(row: Sequence) -> str:
    """One row of a context table: its values, `` | ``-joined."""
    return " | ".join(clean_value(v) for v in row)


def context_lines(columns: Sequence[str], rows: Sequence[tuple]) -> list[str]:
    """A compact table: the header, then one line per row."""
    return [" | ".join(columns)] + [row_line(row) for row in rows]


def context_text(lines: Sequence[str]) -> str:
    """A context table as one field value: a field is one line, so rows are separated
    by ``; `` (a newline would become a space and run the rows together)."""
    return CONTEXT_SEPARATOR.join(lines)
