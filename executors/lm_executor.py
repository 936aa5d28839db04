"""Runs one LM operator's prompts: result cache first, then the runtime, in batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from semql.errors import ExecutionError
from semql.grammar.types import OutputType

from .prompts import PromptBuilder
from .result_cache import ResultCache, cache_key
from .stats import OperatorStats

Progress = Callable[[OperatorStats, int, int], None]
CACHE_FLUSH_ROWS = 16  # new answers are committed to the result cache this often


def _parse(out_type: OutputType, text: str, runtime):
    try:
        return out_type.parse(text)
    except (ValueError, TypeError) as err:
        raise ExecutionError(
            f"model {getattr(runtime, 'path', '?')} answered {text[:80]!r}, "
            f"which is not a valid {out_type}: {err}"
        ) from None


class LMExecutor:
    """Turns rows into prompts, answers them (cache or model) and parses the answers."""

    def __init__(self, runtime, cache: ResultCache, progress: Progress | None = None):
        self.runtime = runtime
        self.cache = cache
        self.progress = progress
        self.prompts = PromptBuilder(runtime.style, getattr(runtime, "format_chat", None))
        # Answers given while planning (sampled selectivities), reused when the operator
        # runs, so a sample costs no extra LM calls even without the result cache.
        self.remembered: dict[str, str] = {}

    def answer(
        self,
        question: str,
        out_type: OutputType,
        names: Sequence[str],
        rows: Sequence[tuple],
        stats: OperatorStats,
        examples: Sequence[tuple] = (),
        dedup: bool = True,
        total: int | None = None,
        remember: bool = False,
    ) -> list:
        """One parsed answer per row; a row whose fields are all NULL answers NULL.

        ``remember``: keep the answers for later calls of this executor (see remembered).
        """
        started = time.perf_counter()
        spec = out_type.spec()
        grammar_id = f"{spec.kind}:{spec.source}"
        prompts: list[str | None] = [
            None
            if row and all(v is None for v in row)
            else self.prompts.build(question, out_type, names, row, examples)
            for row in rows
        ]
        keys = [
            cache_key(self.runtime.model_id, grammar_id, p) if p is not None else None
            for p in prompts
        ]
        cached = self.cache.get_many([k for k in keys if k is not None])
        texts: dict[str, str] = {}
        fresh: list[tuple[str, str]] = []
        out: list = []
        try:
            for i, (prompt, key) in enumerate(zip(prompts, keys, strict=True)):
                if prompt is None:
                    out.append(None)
                    continue
                text = texts.get(key) if dedup else None
                if text is None and key in self.remembered:
                    text = self.remembered[key]
                    stats.cache_hits += 1
                if text is None and key in cached:
                    text = cached[key]
                    stats.cache_hits += 1
                generated = text is None
                if generated:
                    gen = self.runtime.generate(prompt, out_type)
                    text = gen.text
                    stats.lm_calls += 1
                    stats.prompt_tokens += gen.prompt_tokens
                    stats.cached_prompt_tokens += gen.cached_tokens
                    stats.generated_tokens += gen.generated_tokens
                out.append(_parse(out_type, text, self.runtime))
                if generated:  # only answers that parse are cached
                    fresh.append((key, text))
                    if len(fresh) >= CACHE_FLUSH_ROWS:  # a crash later keeps these answers
                        self.cache.put_many(fresh)
                        fresh = []
                texts[key] = text
                if remember:
                    self.remembered[key] = text
                if self.progress is not None:
                    self.progress(stats, stats.rows_in + i + 1, total or len(rows))
        finally:  # answers already paid for are kept, also when the query is cancelled
            self.cache.put_many(fresh)
            stats.seconds += time.perf_counter() - started
        stats.rows_in += len(rows)
        return out
