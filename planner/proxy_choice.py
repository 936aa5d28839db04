"""Where a proxy model may answer for the LM (ScaleLLM): marks eligible LM operators.

Eligible: an accuracy target (``accuracy=`` on the call or ``accuracy_target`` on the
connection), the ``proxy`` switch on, a classification output (bool or ``options=``), no
early exit (a LIMIT that stops after a few LM calls leaves nothing to save), and a source
known before execution (its rows get an embedding view). Whether the proxy is actually
used is decided at run time, once the LM has labelled a sample: only if the projected
agreement meets the target and the whole plan costs less than the LM on every row. Each
refusal is a note in EXPLAIN.
"""

from __future__ import annotations

from semql.grammar.types import BoolType, OptionsType

from . import logical as L
from .options import PlanOptions
from .scope_sql import argument_columns, scope_query, source_known


def attach_proxies(plan: L.QueryPlan, opts: PlanOptions) -> None:
    for scope in plan.scopes:
        select = scope.select
        known = source_known(select)
        for node in scope.root.walk():
            if not isinstance(node, L.LMOperator):
                continue
            target = node.call.kwargs.get("accuracy", opts.accuracy_target)
            if target is None:
                continue
            reason = _refusal(node, opts, known)
            if reason:
                node.notes.append(f"proxy: not used: {reason}; the LM answers every row")
                continue
            node.proxy_target = target
            args = argument_columns([f.expr for f in node.call.fields])
            node.proxy_source = scope_query(select, args, [])
            node.notes.append(
                f"proxy: target {target:g} agreement with the LM; decided at run time after "
                "the LM labels a random sample"
            )
            if "proxy" not in plan.fired:
                plan.fired.append("proxy")


def _refusal(node: L.LMOperator, opts: PlanOptions, known: bool) -> str | None:
    if not opts.proxy:
        return "the proxy switch is off"
    if not isinstance(node.call.output, (BoolType, OptionsType)):
        return f"{node.call.output} is not a classification (bool or options=)"
    if node.call.output.expected:
        return f"its answer is a number ({node.call.output}), not a label"
    if node.call.retrieval is not None:
        return "its prompts carry retrieved context, which a proxy model does not read"
    if isinstance(node, L.LMFilter) and node.early_exit is not None:
        return "the LIMIT's early exit stops after a few LM calls"
    if not known:
        return "its rows come from an LM operator (no embedding view before execution)"
    return None
