"""Answers of an LLMMap with retrieval: the row's context is its prompt's last field, and
an ``options=`` answer is one of the options its retrieved rows contain.

Why narrow: asked "Which movie is this review about?" with the 105 titles as options,
the bundled model was right for 6% of 300 reviews; the first film hybrid retrieval
returns was the right one for 50% (bench/results/retrieval/retrieval-20261201-061531.md).
Offered only the titles its context names, the answer is scored label by label like any
small closed set, so the model chooses among the rows it was shown (27% right with k=3:
the bundled model is a worse judge of the film than the retrieval rank). This is the
LLMJoin rule (a few candidates, not the whole column) applied to retrieved rows. A row
whose context names no option keeps them all, so options that are not values of the
context (sentiment labels over retrieved documents) are unchanged. Narrowed sets take no
content-free prior: a prior of a per-row set of names means nothing (as in LLMJoin).
"""

from __future__ import annotations

from collections.abc import Sequence

from semql.grammar.types import OptionsType
from semql.planner.physical import LMTask
from semql.planner.physical.prompt_format import clean_value

from ..lm.stats import OperatorStats
from .retriever import RowContext


def narrowed(out_type: OptionsType, context: RowContext | None) -> tuple:
    """The options the context's rows contain, in the options' order."""
    if context is None:
        return ()
    return tuple(v for v in out_type.values if clean_value(out_type.render(v)) in context.cells)


def answer_with_context(
    lm,
    task: LMTask,
    values: list[tuple],
    contexts: Sequence[RowContext | None],
    stats: OperatorStats,
    **options,
) -> list:
    """``lm.answer`` for rows with their contexts; options narrowed per row where the
    context names some (each group of rows with the same set asked together)."""
    names, examples = task.names, task.examples
    rows = [(*v, c.text if c is not None else None) for v, c in zip(values, contexts, strict=True)]
    if "field_orders" in options:
        options["field_orders"] = [[*o, len(names) - 1] for o in options["field_orders"]]
    out_type = task.output
    groups: dict[tuple, list[int]] = {}
    if isinstance(out_type, OptionsType) and not out_type.expected:
        for i, context in enumerate(contexts):
            groups.setdefault(narrowed(out_type, context), []).append(i)
    if set(groups) <= {()}:
        return lm.answer(task.question, out_type, names, rows, stats, examples, **options)
    confidences = options.pop("confidences", None)
    orders = options.pop("field_orders", None)
    options.pop("run_order", None)  # each group runs in row order
    out: list = [None] * len(rows)
    conf: list[float | None] = [None] * len(rows)
    for labels, idx in groups.items():
        group = dict(options)
        if labels:
            group["calibration"] = "off"
        if orders is not None:
            group["field_orders"] = [orders[i] for i in idx]
        got: list[float | None] = []
        answers = lm.answer(
            task.question,
            OptionsType(labels) if labels else out_type,
            names,
            [rows[i] for i in idx],
            stats,
            examples,
            confidences=got,
            **group,
        )
        for j, i in enumerate(idx):
            out[i], conf[i] = answers[j], got[j]
    if confidences is not None:
        confidences[:] = conf
    return out
