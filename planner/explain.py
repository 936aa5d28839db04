"""EXPLAIN: the plan as a readable tree, with estimates and (ANALYZE) actual figures.

An execution keeps its own state (the order operators ran in, notes of what happened);
EXPLAIN ANALYZE passes it in as a :class:`Run` view, and the plan stays as planned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from . import logical as L
from .cost import plan_totals
from .physical import calibration_of
from .physical.compiler import Compiled
from .physical.explain import render_stages

Annotate = Callable[[L.PlanNode], str]


class Run(Protocol):
    """What EXPLAIN ANALYZE reads from an execution."""

    def children(self, node: L.PlanNode) -> list[L.PlanNode]: ...

    def notes_of(self, node: L.PlanNode) -> list[str]: ...

    def root(self, scope: L.ScopePlan) -> L.PlanNode: ...

    compiled: Compiled | None  # the physical plan as it ran


def _lines(
    node: L.PlanNode, annotate: Annotate | None, run: Run | None, prefix: str, last: bool, top: bool
):
    branch = "" if top else ("└─ " if last else "├─ ")
    extra = annotate(node) if annotate else ""
    yield prefix + branch + node.title() + (f"  [{extra}]" if extra else "")
    child_prefix = prefix + ("" if top else ("   " if last else "│  "))
    children = run.children(node) if run is not None else node.children
    notes = node.notes + (run.notes_of(node) if run is not None else [])
    for note in notes:
        yield child_prefix + ("   " if not children else "│  ") + f"· {note}"
    for i, child in enumerate(children):
        yield from _lines(child, annotate, run, child_prefix, i == len(children) - 1, False)


def render_tree(node: L.PlanNode, annotate: Annotate | None = None, run: Run | None = None) -> str:
    return "\n".join(_lines(node, annotate, run, "", True, True))


def _decision(call, plan: L.QueryPlan) -> str:
    """How a closed-set answer is read from the model (executors/lm/closed_set.py)."""
    labels = call.output.labels() if call.output is not None else None
    if labels is None or call.function == "LLMJoin":
        return ""
    method = calibration_of(call, plan.options.calibration if plan.options else "")
    return f"; label probabilities, calibration {method}" if method else ""


def render_plan(plan: L.QueryPlan, annotate: Annotate | None = None, run: Run | None = None) -> str:
    """The whole plan: LMQA constants, then every scope with LM work, then the rest
    (with ``run``: operators in the order they ran, and what happened to them)."""
    if not plan.has_lm:
        return "DuckDB (no LM functions): " + " ".join(plan.sql.split())
    parts = []
    enabled = plan.options.enabled() if plan.options else []
    header = "optimisations: " + (", ".join(enabled) if enabled else "none (naive)")
    header += "\nrules fired: " + (", ".join(plan.fired) if plan.fired else "none")
    estimated = any(n.estimate is not None for s in plan.scopes for n in s.root.walk())
    if estimated:
        total = plan_totals(plan)
        header += (
            f"\nestimate: {total.lm_calls:.0f} LM calls, {total.seconds:.1f}s "
            f"(model: {plan.profile.describe()}; result cache not counted)"
        )
    parts.append(header)
    for qa in plan.constants:
        parts.append("constant:\n" + render_tree(qa, annotate, run))
    for scope in plan.scopes:
        root = run.root(scope) if run is not None else scope.root
        parts.append(f"{scope.name}:\n" + render_tree(root, annotate, run))
    types = [f"  {c.label}: {c.output} ({c.type_reason}{_decision(c, plan)})" for c in plan.calls]
    parts.append("LM output types:\n" + "\n".join(types))
    default = plan.options.retrieval if plan.options else "hybrid"
    searched = [f"  {c.label}: {c.retrieval.describe(default)}" for c in plan.calls if c.retrieval]
    if searched:
        parts.append("retrieval:\n" + "\n".join(searched))
    compiled = run.compiled if run is not None else None
    parts.append(render_stages(compiled or plan.physical))
    return "\n\n".join(parts)
