"""The cost model: how many LM calls, prompt tokens and seconds each operator will take.

An LM call costs milliseconds to seconds per row; a relational operator costs next to
nothing beside it, so only LM work is priced. Row counts come from DuckDB itself (exact
counts and distinct counts under the relational predicates below an operator — cheap next
to one LM call), LM filter selectivities from priors (refined at run time on a sample),
token counts from the mean length of the values a call reads, and seconds from the
model's measured speeds (``ModelProfile``, measured once per model file by the executor
and handed to the planner as data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import sqlglot
from sqlglot import exp

from semql.grammar.types import (
    BoolType,
    DateType,
    FloatType,
    IntType,
    JsonType,
    ListType,
    OptionsType,
    OutputType,
)

from . import logical as L
from .physical.profile import ModelProfile, work_seconds
from .physical.prompt_format import MAX_FIELD_CHARS, prompt_chars
from .physical.stages import LMStage
from .rules import dedup, early_exit, precision_first
from .rules.pipeline import lm_calls_in, unlink
from .scope_sql import count_query, scope_query, source_known

PRIOR_SELECTIVITY = 0.5


class Statistics(Protocol):
    """What the cost model may ask the database."""

    def fetch_row(self, sql: str) -> tuple:
        """The first row of an LM-free query."""


@dataclass
class Estimate:
    """The cost model's figures for one operator (shown by EXPLAIN), named as the
    executor's measured ones (executors/lm/stats.py OperatorStats), so EXPLAIN ANALYZE
    puts like beside like."""

    rows_in: float | None = None
    rows_out: float | None = None
    lm_calls: float = 0.0
    prompt_tokens: float = 0.0
    cached_prompt_tokens: float = 0.0
    generated_tokens: float = 0.0
    seconds: float = 0.0
    seconds_per_call: float = 0.0

    def summary(self) -> str:
        def n(v: float | None) -> str:
            if v is None:
                return "?"
            return f"{v / 1000:.1f}k" if v >= 10_000 else f"{v:.0f}"

        parts = [f"est rows {n(self.rows_in)}"]
        if self.rows_out is not None and self.rows_out != self.rows_in:
            parts[0] += f" -> {n(self.rows_out)}"
        if self.lm_calls:
            parts += [
                f"LM calls {n(self.lm_calls)}",
                f"prompt tok {n(self.prompt_tokens)} (KV-cached {n(self.cached_prompt_tokens)})",
                f"gen tok {n(self.generated_tokens)}",
                f"{self.seconds:.1f}s",
            ]
        return ", ".join(parts)


def output_tokens(out_type: OutputType) -> float:
    """Tokens a typical answer decodes (closed sets stop once one label is left)."""
    if isinstance(out_type, (BoolType, OptionsType)):
        return 1.0
    if isinstance(out_type, IntType):
        return 2.0
    if isinstance(out_type, FloatType):
        return 3.0
    if isinstance(out_type, DateType):
        return 6.0
    if isinstance(out_type, ListType):
        return min(out_type.token_budget(), 4 + 4 * max(out_type.min_items, 2))
    if isinstance(out_type, JsonType):
        return 40.0
    return min(out_type.token_budget(), 16)


def prompt_tokens(
    question: str, out_type: OutputType, examples: list, field_chars: dict[str, float], cpt: float
) -> tuple[float, float]:
    """(tokens shared by every row's prompt, tokens of one row's own part)."""
    shared, row = prompt_chars(question, out_type, examples, field_chars)
    return shared / cpt, row / cpt


def reused_tokens(shared: float, profile: ModelProfile) -> float:
    """Tokens of a ``shared``-token prefix the KV cache serves: all of it where the runtime
    reuses prefixes at all, since its chunks start at every prompt segment (the head, each
    field), so a shared head and shared leading fields are whole chunks."""
    return shared if profile.reuses_prefix else 0.0


def call_seconds(
    shared: float, row: float, generated: float, profile: ModelProfile, row_shared: float = 0.0
) -> float:
    """Seconds of one call after the first, whose shared prefix the KV cache serves.

    ``row_shared``: tokens of the row's own fields that the previous prompt also began
    with (the prompt layout's expected sharing, seed 003).
    """
    fresh = shared + row - reused_tokens(shared + row_shared, profile)
    return work_seconds(profile, fresh, generated, 1)


def seconds_per_row(call, mean_chars: float, profile: ModelProfile) -> float:
    """Seconds of one call whose row's fields hold ``mean_chars`` characters in all (a
    reorder group's sample measures them; rules/predicate_order.py ranks by it)."""
    per_field = {f.name: mean_chars / len(call.fields) for f in call.fields}
    shared, row = prompt_tokens(
        call.question, call.output, call.examples, per_field, profile.chars_per_token
    )
    return call_seconds(shared, row, output_tokens(call.output), profile)


def prior_selectivity(op: L.LMFilter) -> float:
    """Fraction of rows an LM filter keeps, before any is answered."""
    pred = op.predicate
    negated = isinstance(pred, exp.Not)
    inner = pred.this if negated else pred
    sel = PRIOR_SELECTIVITY
    if isinstance(op.call.output, OptionsType) and isinstance(inner, exp.EQ):
        sel = 1.0 / max(len(op.call.output.values), 1)
    return 1.0 - sel if negated else sel


def _args_sql(call) -> list[exp.Expression]:
    return [f.expr.copy() for f in call.fields]


def _estimate_lm(
    op: L.LMOperator,
    stage: LMStage,
    select: exp.Select,
    relational: list[exp.Expression],
    rows: float | None,
    factor: float,
    cap: float | None,
    stats: Statistics,
    profile: ModelProfile,
    ranked: int | None = None,
) -> Estimate:
    """Figures of one LMMap/LMFilter given the rows below it, read from its stage of the
    physical plan (``ranked``: precision-first LIMIT's sample size, where it applies: the
    sample is answered whole, and the early exit counts only the rows after it)."""
    call = op.call
    preds = list(relational)
    if stage.known_guard is not None:
        preds.append(sqlglot.parse_one(stage.known_guard, read="duckdb"))
    args = _args_sql(call)
    hashed = exp.Anonymous(this="hash", expressions=[a.copy() for a in args])
    cols = [
        exp.alias_(exp.Count(this=exp.Star()), "n"),
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[hashed])), "d"),
    ] + [
        exp.alias_(
            exp.Avg(this=exp.Length(this=exp.cast(a, "VARCHAR"))),
            f"c{i}",
        )
        for i, a in enumerate(args)
    ]
    n, distinct, *chars = stats.fetch_row(scope_query(select, cols, preds))
    calls = dedup.calls(n, distinct, stage.dedup) * factor
    if cap is not None:
        calls = min(calls, cap)  # runs on the rows a LIMIT below fixed
    if stage.exit is not None and calls:
        selectivity = prior_selectivity(op)
        sampled = precision_first.sampled_calls(calls, ranked) if ranked is not None else 0.0
        still = stage.exit.rows - sampled * selectivity  # rows the LIMIT still needs
        rest = calls - sampled
        if rest > 0 and still > 0:
            rest = early_exit.expected_calls(rest, math.ceil(still), selectivity, stage.exit.batch)
        calls = sampled + (rest if still > 0 else 0.0)
    field_chars = {f.name: float(c or 0) for f, c in zip(call.fields, chars, strict=True)}
    if call.retrieval is not None:  # the header and k rendered rows (cut to one field)
        _, line_chars = stats.fetch_row(call.retrieval.size_sql())
        context = (call.retrieval.k + 1) * float(line_chars or 0)
        field_chars["context"] = min(context, MAX_FIELD_CHARS)
    shared, row = prompt_tokens(
        call.question, call.output, call.examples, field_chars, profile.chars_per_token
    )
    gen = output_tokens(call.output)
    layout = op.layout if op.reorder_rows else None
    row_shared = layout.shared_chars / profile.chars_per_token if layout is not None else 0.0
    per_call = call_seconds(shared, row, gen, profile, row_shared)
    reused = reused_tokens(shared + row_shared, profile)
    est = Estimate(rows_in=rows, lm_calls=calls, seconds_per_call=per_call)
    est.prompt_tokens = calls * (shared + row)
    est.cached_prompt_tokens = max(calls - 1, 0) * reused
    est.generated_tokens = calls * gen
    est.seconds = calls * per_call + (reused / profile.prefill_tokens_per_s if calls else 0)
    return est


def estimate_plan(plan: L.QueryPlan, stats: Statistics, profile: ModelProfile) -> None:
    """Attach an Estimate to every operator of every scope with LM work."""
    stages = {
        stage.key: stage
        for scope in plan.physical.scopes
        for stage in scope.stages
        if isinstance(stage, LMStage)
    }
    for scope in plan.scopes:
        select = scope.select
        if not source_known(select):
            continue  # its rows exist only once an LLMJoin or an earlier scope ran
        steps = unlink(scope.root)
        (total,) = stats.fetch_row(count_query(select, []))
        rows: float | None = float(total)
        relational: list[exp.Expression] = []
        factor = 1.0  # product of the LM filters' selectivities below
        cap: float | None = None  # rows fixed by a materialised LIMIT below
        ranked = None  # the call precision-first LIMIT ranks by, if it applies
        check = precision_first.rank_check(scope.rank_limit, select)
        if check is not None:  # rules/precision_first.py
            (candidates,) = stats.fetch_row(check.count_sql)
            ranked = scope.rank_limit.call
            precision_first.note_cost(scope.root, scope.rank_limit, int(candidates))
        steps[0].estimate = Estimate(rows_in=rows, rows_out=rows)
        for step in steps[1:]:
            est = Estimate(rows_in=rows)
            if isinstance(step, L.Filter) and rows is not None:
                if all(not lm_calls_in(p) for p in step.predicates):
                    relational += step.predicates
                    (n,) = stats.fetch_row(count_query(select, relational))
                    rows = n * factor
                else:
                    rows *= PRIOR_SELECTIVITY
            elif isinstance(step, L.LMOperator) and rows is not None:
                est = _estimate_lm(
                    step,
                    stages[id(step)],
                    select,
                    relational,
                    rows,
                    factor,
                    cap,
                    stats,
                    profile,
                    ranked=check.sample_rows if step.call is ranked else None,
                )
                if isinstance(step, L.LMFilter):
                    sel = prior_selectivity(step)
                    factor *= sel
                    rows *= sel
            elif isinstance(step, L.Aggregate):
                rows = None
            elif isinstance(step, L.Limit) and rows is not None and step.count.isdigit():
                rows = min(rows, float(step.count))
                if step.materialize:
                    cap = rows
            est.rows_out = rows
            step.estimate = est


def note_index_builds(plan: L.QueryPlan, stats: Statistics) -> None:
    """Each retrieving operator's note of its index: rows and the price of a first build
    (what is already stored is known only when the query runs)."""
    hosts = [*plan.constants]
    hosts += [n for s in plan.scopes for n in s.root.walk() if isinstance(n, L.LMOperator)]
    for node in hosts:
        retrieval = node.call.retrieval
        if retrieval is not None:
            (size, _) = stats.fetch_row(retrieval.size_sql())
            node.notes.append(retrieval.build_note(size, plan.options.retrieval))


def plan_totals(plan: L.QueryPlan) -> Estimate:
    """Sum of the LM operators' estimates."""
    total = Estimate()
    for scope in plan.scopes:
        for node in scope.root.walk():
            est = node.estimate
            if isinstance(node, L.LMOperator) and isinstance(est, Estimate):
                total.lm_calls += est.lm_calls
                total.prompt_tokens += est.prompt_tokens
                total.cached_prompt_tokens += est.cached_prompt_tokens
                total.generated_tokens += est.generated_tokens
                total.seconds += est.seconds
    return total
