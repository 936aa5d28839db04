"""LLMQA: one answer over a context, which the later stages read as a constant.

The context is what the call names: subqueries as a compact table, text, or an
expression's values (the physical plan gives the SQL of each); all of it fitted to the
model's window in the model's own tokens (the most lines that fit), with a warning that
says what was left out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from semql.grammar.types import OptionsType
from semql.planner.physical import QAStage
from semql.planner.physical.prompt_format import context_lines, context_text

from ..lm.lm_executor import LMExecutor
from ..retrieval.answers import narrowed
from ..retrieval.retriever import Retriever
from .run_state import QueryRun

Fetch = Callable[[str], tuple[list[str], list[tuple]]]


def run_qa(
    stage: QAStage, run: QueryRun, fetch: Fetch, lm: LMExecutor, retriever: Retriever | None
):
    """The answer of ``stage``. With retrieval, the context is the k rows of its
    subquery most relevant to the question."""
    call = stage.call
    op = run.op_stats(stage.key, stage.title)
    lines: list[str] = []
    out_type = call.output
    for ctx in stage.contexts:
        if ctx.kind == "retrieval" and retriever is not None:
            found, context = retriever.lines(call)
            lines += found
            run.note(stage.key, retriever.report(call))
            if isinstance(out_type, OptionsType) and not out_type.expected:
                named = narrowed(out_type, context)  # as LLMMap's (retrieval/answers.py)
                out_type = OptionsType(named) if named else out_type
        elif ctx.kind == "rows":
            names, rows = fetch(ctx.sql)
            lines += context_lines(names, rows)
        elif ctx.kind == "text":
            lines += textwrap.wrap(ctx.text, 200) or [""]
        elif ctx.kind == "value":
            _, rows = fetch(ctx.sql)
            lines.append("" if rows[0][0] is None else str(rows[0][0]))
        elif ctx.kind == "values":
            _, rows = fetch(ctx.sql)
            lines += ["NULL" if v is None else " ".join(str(v).split()) for (v,) in rows]
    kept = lm.window.context_lines(call.question, out_type, lines, call.examples)
    if kept < len(lines):
        run.query_stats.warnings.append(
            f"{call.label}: context cut to {kept} of {len(lines)} lines to fit the "
            f"model's window of {lm.runtime.n_ctx} tokens"
        )
    names = ["context"] if lines else []
    row = (context_text(lines[:kept]),) if lines else ()
    answer = lm.answer(
        call.question,
        out_type,
        names,
        [row],
        op,
        call.examples,
        calibration="off" if out_type is not call.output else call.kwargs.get("calibration"),
        max_chars=None,
    )[0]
    op.rows_out = 1
    return answer
