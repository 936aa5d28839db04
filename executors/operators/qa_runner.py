"""LLMQA: one answer over a context, substituted into the query as a constant.

The context is what the call names: subqueries as a compact table, text, or an
expression's values; all of it fitted to the model's window in the model's own tokens
(the most lines that fit), with a warning that says what was left out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from sqlglot import exp

from semql.errors import BindError
from semql.grammar.types import ListType, OptionsType
from semql.planner import logical as L
from semql.planner.calls import is_lm_call
from semql.planner.prompt_format import context_lines, context_text
from semql.planner.scope_sql import conjuncts, scope_query

from ..lm.lm_executor import LMExecutor
from ..retrieval.answers import narrowed
from ..retrieval.retriever import Retriever
from .run_state import QueryRun

Fetch = Callable[[str], tuple[list[str], list[tuple]]]
# Rows of one context read at most (the window fits far fewer; this bounds memory).
QA_CONTEXT_ROWS = 10_000


def context_values(
    expr: exp.Expression, call_node: exp.Expression, label: str, fetch: Fetch
) -> list[str]:
    """An LLMQA context expression's values, not its SQL text: a constant
    (``'Today: ' || current_date``) is one value; an expression over columns
    (``'Title: ' || m.title``) has one value per row of the query's FROM under the
    WHERE's conditions that need no LM, one line each."""
    select = call_node.find_ancestor(exp.Select)
    value = exp.alias_(expr.copy(), "value")
    if select is None or expr.find(exp.Column) is None:
        _, rows = fetch(exp.select(value).sql(dialect="duckdb"))
        return ["" if rows[0][0] is None else str(rows[0][0])]
    if any(is_lm_call(n) for j in select.args.get("joins") or [] for n in j.walk()):
        raise BindError(
            f"{label}: a context expression over columns cannot read a JOIN with "
            "an LM call; give it as a subquery: (SELECT ... FROM ...)"
        )
    where = select.args.get("where")
    preds = [
        c
        for c in (conjuncts(where.this) if where is not None else [])
        if not any(is_lm_call(n) for n in c.walk())
    ]
    sql = scope_query(select, [value], preds)
    _, rows = fetch(f"SELECT * FROM ({sql}) LIMIT {QA_CONTEXT_ROWS}")
    return ["NULL" if v is None else " ".join(str(v).split()) for (v,) in rows]


def run_qa(
    qa: L.LMQA, run: QueryRun, fetch: Fetch, lm: LMExecutor, retriever: Retriever | None
) -> None:
    """Answer ``qa`` and put the answer where the call was (a list in ``x IN (...)``)
    in the run's working tree. With retrieval, the context is the k rows of its
    subquery most relevant to the question."""
    call = qa.call
    op = run.op_stats(qa)
    nodes = run.call_nodes(call)
    lines: list[str] = []
    out_type = call.output
    for ctx in (run.working(c) for c in call.context):
        if call.retrieval is not None and retriever is not None:
            found, context = retriever.lines(call)
            lines += found
            run.note(qa, retriever.report(call))
            if isinstance(out_type, OptionsType) and not out_type.expected:
                named = narrowed(out_type, context)  # as LLMMap's (retrieval/answers.py)
                out_type = OptionsType(named) if named else out_type
        elif isinstance(ctx, (exp.Subquery, exp.Select)):
            sub = ctx.this if isinstance(ctx, exp.Subquery) else ctx
            names, rows = fetch(
                f"SELECT * FROM ({sub.sql(dialect='duckdb')}) LIMIT {QA_CONTEXT_ROWS}"
            )
            lines += context_lines(names, rows)
        elif isinstance(ctx, exp.Literal):
            lines += textwrap.wrap(str(ctx.this), 200) or [""]
        else:
            lines += context_values(ctx, nodes[0], call.label, fetch)
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
    for n in nodes:
        parent = n.parent
        if isinstance(call.output, ListType) and isinstance(parent, exp.In):
            parent.set("field", None)
            parent.set("expressions", [exp.convert(v) for v in answer] or [exp.null()])
        else:
            n.replace(exp.convert(answer))
