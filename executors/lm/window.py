"""Prompts that fit the model's window: a row's field values cut shorter until its prompt
and longest answer fit, and how many lines of an LLMQA context fit.

The cut is a function of the row's own prompt and the model, so a row's prompt (hence
its cache key and answer) is the same whichever operator, sample or prior asks it.
"""

from __future__ import annotations

from collections.abc import Sequence

from semql.grammar.types import OutputType
from semql.planner.physical.prompt_format import MAX_FIELD_CHARS, PromptBuilder, context_text

from ..runtimes.runtime import Runtime


class Window:
    """The window of one runtime, with the prompt builder its prompts come from."""

    def __init__(self, runtime: Runtime, prompts: PromptBuilder):
        self.runtime = runtime
        self.prompts = prompts

    def fits(self, prompt: str, out_type: OutputType) -> bool:
        """Whether the prompt and the longest answer fit the model's window, in the
        model's own tokens (4 characters a token where the runtime cannot count; a prompt
        of fewer characters than the room always fits: a token is at least one)."""
        window = self.runtime.n_ctx
        if window is None:
            return True
        room = window - out_type.token_budget() - 8  # the label scoring's extra steps
        if len(prompt) <= room:
            return True
        if self.runtime.local:
            return len(self.runtime.tokenize(prompt)) <= room
        return len(prompt) // 4 <= room

    def fitted(self, question, out_type, cells, examples, max_chars) -> str:
        """The row's prompt with its field values cut shorter until it fits (the question
        and examples stay whole; if they alone overflow, the runtime says so)."""
        names, values = [n for n, _ in cells], [v for _, v in cells]
        limit = max_chars or MAX_FIELD_CHARS
        while True:
            limit //= 2
            prompt = self.prompts.build(question, out_type, names, values, examples, limit)
            if limit <= 40 or self.fits(prompt, out_type):
                return prompt

    def row_prompt(self, question, out_type, names, row: tuple, examples) -> str:
        """A row's prompt with its fields as the call lists them, cut to the window as
        an operator's rows are cut (so its cache key is the row's own)."""
        prompt = self.prompts.build(question, out_type, names, list(row), examples)
        if self.fits(prompt, out_type):
            return prompt
        return self.fitted(
            question, out_type, list(zip(names, row, strict=True)), examples, MAX_FIELD_CHARS
        )

    def context_lines(
        self,
        question: str,
        out_type: OutputType,
        lines: list[str],
        examples: Sequence[tuple] = (),
    ) -> int:
        """How many of the context ``lines`` fit the model's window with the question,
        examples and the longest answer: all of them, or the most that fit."""

        def fits(k: int) -> bool:
            text = context_text(lines[:k])
            prompt = self.prompts.build(question, out_type, ["context"], [text], examples, None)
            return self.fits(prompt, out_type)

        if fits(len(lines)):
            return len(lines)
        lo, hi = 0, len(lines)  # lo fits (or is 0), hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo
