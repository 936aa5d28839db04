"""Compiles a logical plan into stages for one set of run-time choices.

The logical plan says which operators run and what each rule decided; this module writes
what the engine runs: each stage's SQL over the temp tables of the stages before it,
and the final statement. It works on its own copy of the statement, and at each LM
operator replaces the call by a lookup of its answers (lookups.py) before the operators
above it are written, exactly as the answers will be there when they run.

Three things are known only at run time, and each is a :class:`Choices` field rather
than an edit: LLMQA answers (constants the later SQL reads), whether precision-first
LIMIT applies to a scope (a count), and the order of a group of LM filters (measured on
a sample). The engine asks :class:`Compiled` for the plan under a new choice; stages it
already ran compile the same again, because a choice only changes what comes after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp

from .. import logical as L
from ..binder import calls_in
from ..calls import LMCall, split_arguments
from ..cost import seconds_per_row
from ..options import PlanOptions
from ..rules import dedup, early_exit, precision_first, predicate_order, projection_pruning
from ..rules.pipeline import Steps, unlink
from ..rules.short_circuit import needed_condition
from ..scope_sql import (
    argument_columns,
    argument_list,
    chain_below,
    count_query,
    predicates_in,
    scope_query,
)
from . import constants, lookups
from . import stages as S
from .joins import join_sql
from .profile import DEFAULT_PROFILE
from .samples import GroupSampleSQL, calibration_sql
from .top_k import fix_limited_rows

PLAN_PREFIX = "__semql"  # temp-table names in a plan not yet run (a run has its own)


@dataclass(frozen=True)
class Choices:
    """What the run decided so far. ``orders``: a scope's steps after its groups were
    sampled; ``exits``: where an early exit sits after a reorder (None: nowhere)."""

    prefix: str
    answers: tuple = ()
    ranked: frozenset[int] = frozenset()
    orders: dict[int, tuple] = field(default_factory=dict)
    sampled: frozenset[tuple[int, int]] = frozenset()
    exits: dict[int, tuple[int, int] | None] = field(default_factory=dict)


class Compiled:
    """The physical plan under ``choices``: QA stages, then every scope's stages and the
    final statement. Until an LLMQA's answer is known (``pending``), the SQL after it
    reads a ``$llmqa_<i>`` placeholder in its place: such a plan is for EXPLAIN and the
    cost model, and the engine runs its scopes only once ``pending`` is 0."""

    def __init__(self, plan: L.QueryPlan, choices: Choices):
        self.plan, self.choices = plan, choices
        self.qa: list[S.QAStage] = []
        self.scopes: list[S.ScopeStages] = []
        self.final_sql = ""
        self.temp_tables: list[str] = []
        self.pending = len(plan.constants) - len(choices.answers)  # LLMQA answers to come
        _Writer(self).write()

    def for_run(self, prefix: str) -> Compiled:
        """This plan with its temp tables named under a run's own ``prefix``."""
        return Compiled(self.plan, replace(self.choices, prefix=prefix))

    def with_answer(self, answer) -> Compiled:
        """The plan once the next LLMQA's answer is known."""
        return Compiled(self.plan, replace(self.choices, answers=(*self.choices.answers, answer)))

    def ranking(self, scope: int) -> Compiled:
        """The plan with precision-first LIMIT applied to scope ``scope``."""
        return Compiled(self.plan, replace(self.choices, ranked=self.choices.ranked | {scope}))

    def after_sampling(self, sample: S.GroupSample, measured: list[tuple], profile):
        """The plan with the sampled group in the order its measures give, and a note per
        predicate (key -> text). ``measured``: per unit, (rows passing, rows, mean
        characters of each call's sampled argument tuples)."""
        scope = self.plan.scopes[sample.scope]
        steps = list(self.choices.orders.get(sample.scope) or unlink(scope.root))
        start = next(
            i
            for i, s in enumerate(steps)
            if isinstance(s, L.LMOperator) and s.reorder_group == sample.group
        )
        ranks, notes = _ranks(steps, sample, measured, profile or DEFAULT_PROFILE)
        new = predicate_order.reorder(steps, start, ranks)
        exits = dict(self.choices.exits)
        if new.exit_from is not None:  # early exit belongs to whichever filter runs last
            for op in new.steps:
                if isinstance(op, L.LMOperator) and op.reorder_group == sample.group:
                    exits[id(op)] = None
            exits[id(new.exit_to)] = (new.exit_from.early_exit, new.exit_from.batch_rows)
        choices = replace(
            self.choices,
            orders={**self.choices.orders, sample.scope: tuple(new.steps)},
            sampled=self.choices.sampled | {(sample.scope, sample.group)},
            exits=exits,
        )
        return Compiled(self.plan, choices), notes

    def steps(self, scope: int) -> Steps:
        """A scope's operators bottom-up in the order they run, for EXPLAIN ANALYZE."""
        return list(self.choices.orders.get(scope) or unlink(self.plan.scopes[scope].root))


def _name(node: L.PlanNode) -> str:
    """The operator's name in the run's figures: its EXPLAIN title without the type."""
    return node.title().split("  ->")[0]


def _ranks(steps: Steps, sample: S.GroupSample, measured: list[tuple], profile) -> tuple:
    """Each predicate's rank (rules/predicate_order.py) from its measures on the sample
    and the cost model's seconds per call; and the note EXPLAIN ANALYZE shows."""
    ops = {id(s): s for s in steps}
    ranks, notes = [], {}
    for unit, (passed, n, chars) in zip(sample.units, measured, strict=True):
        cost = sum(
            seconds_per_row(ops[sampled.key].call, mean_chars, profile)
            for sampled, mean_chars in zip(unit.calls, chars, strict=True)
        )
        rank = predicate_order.rank(cost, passed, n)
        ranks.append(rank)
        notes[unit.key] = (
            f"sampled: {passed}/{n} rows pass, ~{cost * 1000:.0f} ms/row, rank {rank:.3f}"
        )
    return ranks, notes


class _Writer:
    """One compilation: the working copy of the statement and the SQL written from it."""

    def __init__(self, out: Compiled):
        self.out, self.plan, self.choices = out, out.plan, out.choices
        self.tree = None
        self.nodes: dict[int, exp.Expression] = {}
        if self.plan.statement is not None:
            self.tree = self.plan.statement.copy()
            for original, copied in zip(self.plan.statement.walk(), self.tree.walk(), strict=True):
                self.nodes[id(original)] = copied
        self.done: dict[int, exp.Expression] = {}  # filter -> "this row's answer is known"
        self.samples: dict[int, str] = {}  # call -> its calibration sample's SQL (a scope's)
        self.tables = 0

    def write(self) -> None:
        answers = self.choices.answers
        for i, qa in enumerate(self.plan.constants):
            call = qa.call
            nodes = [self.working(n) for n in call.nodes]
            self.out.qa.append(
                S.QAStage(id(qa), qa.title(), call, constants.contexts(call, self.working))
            )
            answer = answers[i] if i < len(answers) else constants.Pending(i)
            constants.substitute(call, nodes, answer)
        for index, scope in enumerate(self.plan.scopes):
            self.out.scopes.append(self.scope(index, scope))
        if self.tree is not None:
            self.out.final_sql = self.tree.sql(dialect="duckdb")

    # -- the working tree --------------------------------------------------------------

    def working(self, node: exp.Expression) -> exp.Expression:
        """The copy of a plan expression in the working tree. Expressions the planner built
        outside the statement (LM-free conjuncts it copied) are read as they are."""
        return self.nodes.get(id(node), node)

    def fields(self, call: LMCall) -> list[exp.Expression]:
        """The row fields of an LLMMap as they read now: an LM call nested in them was
        replaced by its lookup when its own operator was written."""
        if call.function == "LLMMap" and call.nodes:
            return split_arguments(self.working(call.nodes[0]))[0][1:]
        return [self.working(f.expr) for f in call.fields]

    def table(self, what: str) -> str:
        name = f"{self.choices.prefix}_{what}{self.tables}"
        self.tables += 1
        self.out.temp_tables.append(name)
        return name

    def below(self, steps: Steps, node: L.PlanNode) -> list[exp.Expression]:
        """Predicates of the operators that run under ``node`` (its input rows), with the
        "answer known" condition of filters that exit early."""
        position = next((i for i, s in enumerate(steps) if s is node), None)
        under = steps[:position][::-1] if position is not None else chain_below(node)
        known = lambda f: [self.done[id(f)]] if id(f) in self.done else []  # noqa: E731
        return [self.working(p) for p in predicates_in(under, known)]

    # -- one scope ---------------------------------------------------------------------

    def scope(self, index: int, scope: L.ScopePlan) -> S.ScopeStages:
        select = self.working(scope.select)
        rank = scope.rank_limit
        check = precision_first.rank_check(rank, select)
        ranked = rank.call if rank is not None and index in self.choices.ranked else None
        self.samples = {
            id(node.call): self.calibration(scope, node)
            for node in scope.root.walk()
            if isinstance(node, L.LMOperator)
            and node.call is not None
            and not any(calls_in(f) for f in self.fields(node.call))
        }
        steps = list(self.choices.orders.get(index) or unlink(scope.root))
        found: list[S.Stage] = []
        self.node(steps[0], scope, steps, ranked, found)
        seen: set[int] = set()
        for i in range(1, len(steps)):
            step = steps[i]
            group = step.reorder_group if isinstance(step, L.LMOperator) else None
            if group is not None and group not in seen:
                seen.add(group)
                if (index, group) not in self.choices.sampled:
                    found.append(self.group_sample(index, group, scope, steps, i))
            self.node(step, scope, steps, ranked, found)
        return S.ScopeStages(scope.name, tuple(found), check)

    def calibration(self, scope: L.ScopePlan, op: L.LMOperator) -> str:
        """The SQL of an operator's calibration sample, for the method its task settled."""
        population = [self.working(p) for p in scope.population]
        size = getattr(self.plan.options, "calibration_rows", PlanOptions.calibration_rows)
        fields = self.fields(op.call)
        method = op.task.calibration
        return calibration_sql(self.working(scope.select), fields, population, size, method)

    def sample_of(self, scope: L.ScopePlan, op: L.LMOperator) -> str:
        """The operator's calibration sample: written when the scope starts, unless its
        arguments hold another LM call of the scope, which must answer first."""
        return self.samples.get(id(op.call)) or self.calibration(scope, op)

    def lm_work(self, op: L.LMOperator, scope: L.ScopePlan) -> dict:
        """What the LM side needs to answer an operator's rows, for its stage and for a
        group sample's try of it: the operator's key and name, its task, its calibration
        sample and, where it retrieves, its call."""
        call = op.call
        return {
            "key": id(op),
            "title": _name(op),
            "task": op.task,
            "sample_sql": self.sample_of(scope, op),
            "retrieval": call if call.retrieval is not None else None,
        }

    def node(self, node, scope, steps, ranked, found: list) -> None:
        """The stages of one operator; a source subtree (joins, LMJoin) its children's
        first."""
        if isinstance(node, (L.Join, L.LMJoin)):
            for child in node.children:
                self.node(child, scope, steps, ranked, found)
        if isinstance(node, L.Limit) and node.materialize:
            table = self.table("top")
            below = self.below(steps, node)
            found.append(
                S.TopKStage(id(node), fix_limited_rows(self.working(scope.select), below, table))
            )
        elif isinstance(node, L.LMOperator):
            found.append(self.lm_stage(node, scope, steps, ranked))
        elif isinstance(node, L.LMJoin):
            found.append(self.join_stage(node, scope))

    def lm_stage(self, node: L.LMOperator, scope, steps, ranked) -> S.LMStage:
        call = node.call
        select = self.working(scope.select)
        preds = self.below(steps, node)
        guard = known = None
        if node.short_circuit:
            (target,) = [self.working(n) for n in call.nodes]
            guard = needed_condition(self.working(node.predicate), target)
            if guard is not None:
                preds.append(guard)
            known = needed_condition(node.predicate, call.nodes[0])  # as planned, no answers
        fields = self.fields(call)
        order = exp.alias_(sqlglot.parse_one("row_number() OVER ()"), "__ord")
        columns = projection_pruning.input_columns([*argument_columns(fields), order], node.prune)
        source = shown = scope_query(select, columns, preds)
        setup: tuple[str, ...] = ()
        if not node.prune:  # whole rows materialised first, as a naive engine would
            wide = self.table("rows")
            setup = (f"CREATE TEMP TABLE {wide} AS {source}",)
            source = f"SELECT * FROM {wide}"
        body = dedup.input_rows(source, argument_list(len(fields)), node.dedup)
        inputs, results = self.table("in"), self.table("out")
        is_ranked = ranked is call
        exit_at = self.exit_point(node)  # ranked: after the sample, until the LIMIT fills
        done = lookups.known(fields, inputs, results, guard) if exit_at is not None else None
        for n in call.nodes:
            self.working(n).replace(lookups.lookup(fields, inputs, results))
        check = None
        if exit_at is not None:
            passing = self.below(steps, node) + [self.working(node.predicate), done]
            check = early_exit.exit_check(select, passing, *exit_at)
            self.done[id(node)] = done
        rank = None
        if is_ranked:
            candidates = [self.working(c) for c in scope.rank_limit.candidates]
            rank = precision_first.rank_order(
                scope.rank_limit, select, candidates, fields, inputs, results
            )
        rows_out = None
        if isinstance(node, L.LMFilter):
            kept = self.below(steps, node) + [self.working(node.predicate)]
            rows_out = count_query(select, kept + ([done] if done is not None else []))
        proxy = None
        if node.proxy_target is not None and exit_at is None and rank is None:
            proxy = S.ProxySpec(
                node.proxy_target, node.proxy_source, tuple(f.name for f in call.fields)
            )
        args = argument_list(len(call.fields))
        return S.LMStage(
            **self.lm_work(node, scope),
            inputs=inputs,
            results=results,
            setup=setup,
            create_inputs=(
                f"CREATE TEMP TABLE {inputs} AS "
                f"SELECT row_number() OVER () AS __idx, * FROM ({body})"
            ),
            create_results=(
                f"CREATE TEMP TABLE {results} "
                f"(__idx BIGINT, __out {call.output.duckdb_type}, __rank DOUBLE)"
            ),
            rows_sql=f"SELECT __idx, {args} FROM {inputs} ORDER BY __idx",
            source_sql=shown,
            known_guard=known.sql(dialect="duckdb") if known is not None else None,
            dedup=node.dedup,
            rows_out_sql=rows_out,
            exit=check,
            rank=rank,
            proxy=proxy,
        )

    def exit_point(self, node: L.LMOperator) -> tuple[int, int] | None:
        if id(node) in self.choices.exits:
            return self.choices.exits[id(node)]
        if isinstance(node, L.LMFilter) and node.early_exit is not None:
            return node.early_exit, node.batch_rows
        return None

    def join_stage(self, node: L.LMJoin, scope: L.ScopePlan) -> S.JoinStage:
        """LLMJoin: the left values that can reach the output and the right values; the
        call becomes a lookup of the mapping the LM builds into the stage's table."""
        call = node.call
        select = self.working(scope.select)
        join = self.working(node.join)
        right_alias = join.this.alias_or_name
        left, right = self.fields(call)
        if {c.table for c in left.find_all(exp.Column)} == {right_alias}:
            left, right = right, left
        table = self.table("join")
        preds = [self.working(p) for p in node.left_predicates]
        left_sql, right_sql, cond = join_sql(select, join, left, right, preds, table)
        for n in call.nodes:
            self.working(n).replace(cond.copy())
        return S.JoinStage(
            id(node), _name(node), call.question, tuple(call.examples), left_sql, right_sql, table
        )

    def group_sample(self, index: int, group: int, scope, steps: Steps, i: int) -> S.GroupSample:
        """predicate_order's sample of the group starting at ``steps[i]``."""
        select = self.working(scope.select)
        _, units = predicate_order.group_units(steps, i)
        preds = [self.working(u[-1].predicate) for u in units]
        view = f"{self.choices.prefix}_sample{group}"
        sql = GroupSampleSQL(view, select, self.below(steps, steps[i]), preds)
        found = []
        for unit, pred in zip(units, preds, strict=True):
            owner = {id(self.working(n)): op for op in unit for n in op.call.nodes}
            calls, count = sql.predicate(pred)
            sampled = tuple(
                S.SampledCall(
                    **self.lm_work(op, scope), args_sql=args_sql, answers=answers, columns=columns
                )
                for op, args_sql, answers, columns in (
                    (owner[id(node)], a, v, n) for node, a, v, n in calls
                )
            )
            found.append(S.SampledUnit(id(unit[-1]), sampled, count))
        return S.GroupSample(index, group, view, sql.sql, tuple(found))
