"""EXPLAIN's text: the plan tree with the planner's estimates and, after EXPLAIN ANALYZE,
what each operator did and the query's totals and warnings."""

from __future__ import annotations

from semql.executors.lm.stats import QueryStats
from semql.executors.operators.run_state import QueryRun
from semql.planner import logical as L
from semql.planner.explain import render_plan


def planned(plan: L.QueryPlan, placement: str) -> str:
    """The plan with its estimates (nothing runs); ``placement``: where LM work runs."""
    return _with_placement(render_plan(plan, _estimate_of), plan, placement)


def analyzed(plan: L.QueryPlan, run: QueryRun, stats: QueryStats, placement: str) -> str:
    """The plan beside what its run did, then the totals and warnings of the run."""
    text = render_plan(plan, lambda node: _estimate_and_actual(node, run), run)
    text = _with_placement(text, plan, placement)
    total = (
        f"total: {stats.lm_calls} LM calls, {stats.prompt_tokens} prompt tokens "
        f"({stats.cached_prompt_tokens} from KV cache), {stats.generated_tokens} generated, "
        f"{stats.cache_hits} result-cache hits, {stats.seconds:.2f}s"
    )
    warnings = "".join(f"\nwarning: {w}" for w in stats.warnings)
    return f"{text}\n\n{total}{warnings}"


def _with_placement(text: str, plan: L.QueryPlan, placement: str) -> str:
    """The plan's text with a line saying where its LM operators run (none: no line)."""
    if not plan.has_lm:
        return text
    return f"LM operators run: {placement}\n{text}"


def _estimate_of(node: L.PlanNode) -> str:
    return node.estimate.summary() if node.estimate is not None else ""


def _estimate_and_actual(node: L.PlanNode, run: QueryRun) -> str:
    parts = [_estimate_of(node)] if node.estimate is not None else []
    actual = run.stats_of(node)
    if actual is not None:
        parts.append("actual: " + actual.summary())
    return " | ".join(parts)
