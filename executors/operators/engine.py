"""Executes a QueryPlan: DuckDB for every relational step, the LM runtime for LM steps.

How LM results meet the rest of the query: for each LM operator, DuckDB computes the
operator's input (the scope's FROM and the predicates of the operators below it) into a
temp table of distinct argument tuples; the LM answers them into a second temp table;
then every occurrence of the call in the AST is replaced by a correlated lookup of its
answer (lookups.py), which DuckDB decorrelates into a hash join. The LM side gets each
operator's LM task (planner/physical.py) with its rows and the run inputs only the
engine can compute (retrieved contexts, the calibration sample and prior). After all LM
operators ran, the rewritten statement runs in DuckDB as one query, so joins,
aggregates, ORDER BY and LIMIT keep DuckDB's exact semantics. Temp tables are dropped
afterwards, on success or failure.

The plan is read, never written: the rewriting happens on the run's own copy of the
statement, and what happens at run time is kept in a :class:`QueryRun`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import exp

from semql.grammar.types import OutputType
from semql.planner import logical as L
from semql.planner.calls import LMCall
from semql.planner.options import PlanOptions
from semql.planner.rules import dedup, projection_pruning
from semql.planner.rules.short_circuit import needed_condition
from semql.planner.scope_sql import (
    argument_columns,
    argument_list,
    count_query,
    scope_query,
)

from ..lm.lm_executor import LMExecutor
from ..lm.stats import QueryStats
from ..proxy.embedding_views import EmbeddingStore, text_hash
from ..proxy.embeddings import LexicalEmbedder, MiniLMEmbedder
from ..proxy.proxy_executor import ProxyRunner, render
from ..retrieval.retriever import Retriever
from . import lookups, precision_first
from .calibration_sample import population_sample
from .database import Database
from .filter_order import SampleIO, order_filters
from .join_runner import run_join
from .qa_runner import run_qa
from .run_state import QueryRun
from .top_k import fix_limited_rows

Answerer = Callable[..., list]  # (node, values, stats, **options) -> one answer per row


class Engine:
    """Runs plans on one DuckDB connection with one LM executor."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        lm: Callable[[], LMExecutor],
        proxy: Callable[[], tuple] | None = None,
    ):
        self.con = con
        self.db = Database(con)  # renewed per query: its temp tables are the query's
        self._make_lm = lm
        self._executor: LMExecutor | None = None
        self._proxy = proxy  # () -> (EmbeddingStore, embedders, seed), made on first use
        self.last_run: QueryRun | None = None

    def _lm(self) -> LMExecutor:
        """One LM executor per query, so answers sampled for planning are reused."""
        if self._executor is None:
            self._executor = self._make_lm()
        return self._executor

    # -- entry -------------------------------------------------------------------------

    def run(self, plan: L.QueryPlan, params=None, stats: QueryStats | None = None) -> pl.DataFrame:
        stats = stats if stats is not None else QueryStats()
        run = self.last_run = QueryRun(plan, stats)
        self.db = Database(self.con)
        started = time.perf_counter()
        try:
            if not plan.has_lm:
                return self.db.frame(plan.sql, params, own=True)
            try:
                if any(c.retrieval is not None for c in plan.calls):
                    run.retriever = self._make_retriever(plan)
                for qa in plan.constants:
                    run_qa(qa, run, self.db.fetch, self._lm(), run.retriever)
                for scope in plan.scopes:
                    self._run_scope(scope, run, plan.profile)
                if run.retriever is not None:
                    stats.warnings += run.retriever.warnings
                final = run.tree.sql(dialect="duckdb")
                return self.db.frame(
                    final,
                    params,
                    transactional=not isinstance(
                        plan.statement, (exp.Select, exp.SetOperation, exp.Subquery)
                    ),
                )
            finally:
                self.db.drop_temp()
        finally:
            stats.total()
            stats.seconds = time.perf_counter() - started

    def _make_retriever(self, plan: L.QueryPlan) -> Retriever:
        """Retrieval over the connection's embedding store, with MiniLM where it is one
        of the connection's embedders (else the first of them)."""
        if self._proxy is not None:
            store, embedders, _ = self._proxy()
        else:
            store, embedders = EmbeddingStore(self.con.cursor()), [LexicalEmbedder()]
        embedder = next((e for e in embedders if e.id == MiniLMEmbedder.id), embedders[0])
        method = plan.options.retrieval if plan.options else "hybrid"
        lm = self._lm()
        check = lm.budget.check if lm.budget is not None else None
        return Retriever(self.db.fetch, store, embedder, method, lm.progress, check)

    # -- plan walk ---------------------------------------------------------------------

    def _run_scope(self, scope: L.ScopePlan, run: QueryRun, profile) -> None:
        """Run the scope's operators bottom-up (a group of LM filters in the order
        sampling gives it; the run records the order)."""
        run.ranked[id(scope)] = precision_first.ranked_call(
            self.db.fetch, self._lm().scores, scope, run
        )
        size = getattr(run.plan.options, "calibration_rows", PlanOptions.calibration_rows)
        run.samples[id(scope)] = population_sample(self.db.fetch, run, scope, size)
        steps = run.steps(scope)
        ordered: set[int] = set()
        self._run_node(steps[0], scope, run)
        for i in range(1, len(steps)):
            step = steps[i]
            group = step.reorder_group if isinstance(step, L.LMOperator) else None
            if group is not None and group not in ordered:
                ordered.add(group)
                io = SampleIO(self.db, self._answerer(scope, run))
                steps = order_filters(io, run, scope, steps, i, profile)
            self._run_node(steps[i], scope, run)

    def _run_node(self, node: L.PlanNode, scope: L.ScopePlan, run: QueryRun) -> None:
        """Run one operator; a source subtree (joins, LMJoin) runs its children first."""
        if isinstance(node, (L.Join, L.LMJoin)):
            for child in node.children:
                self._run_node(child, scope, run)
        if isinstance(node, L.Limit) and node.materialize:
            fix_limited_rows(node, scope, run, self.db)
        elif isinstance(node, L.LMOperator):
            self._run_map(node, scope, run)
        elif isinstance(node, L.LMJoin):
            run_join(node, scope, run, self.db, self._lm())

    def _input_query(self, node: L.LMOperator, scope: L.ScopePlan, run: QueryRun) -> str:
        """Distinct (dedup) or all argument tuples of the rows ``node`` must answer.

        Rows whose predicate a cheap side already decides are left out (short-circuit);
        without projection pruning whole rows are materialised first (naive baseline).
        """
        select = run.select(scope)
        preds = run.below(scope, node)
        if node.short_circuit:
            (target,) = run.call_nodes(node.call)
            guard = needed_condition(run.working(node.predicate), target)
            if guard is not None:
                preds.append(guard)
                run.guards[id(node)] = guard
        fields = run.fields(node.call)
        args = argument_columns(fields)
        order = exp.alias_(sqlglot.parse_one("row_number() OVER ()"), "__ord")
        names = argument_list(len(fields))
        source = scope_query(
            select, projection_pruning.input_columns([*args, order], node.prune), preds
        )
        if not node.prune:  # whole rows materialised first, as a naive engine would
            wide = self.db.new_table("rows")
            self.db.exec(f"CREATE TEMP TABLE {wide} AS {source}")
            source = f"SELECT * FROM {wide}"
        return dedup.input_rows(source, names, node.dedup)

    def _run_map(self, node: L.LMOperator, scope: L.ScopePlan, run: QueryRun) -> None:
        call: LMCall = node.call
        select = run.select(scope)
        fields = run.fields(call)
        op = run.op_stats(node)
        body = self._input_query(node, scope, run)
        args = argument_list(len(call.fields))
        inputs, results = self.db.new_table("in"), self.db.new_table("out")
        self.db.exec(
            f"CREATE TEMP TABLE {inputs} AS SELECT row_number() OVER () AS __idx, * FROM ({body})"
        )
        self.db.exec(
            f"CREATE TEMP TABLE {results} "
            f"(__idx BIGINT, __out {call.output.duckdb_type}, __rank DOUBLE)"
        )
        _, rows = self.db.fetch(f"SELECT __idx, {args} FROM {inputs} ORDER BY __idx")
        lookup = lookups.lookup(fields, inputs, results)
        done = None
        ranked = run.ranked.get(id(scope)) is call
        ranked_by = precision_first.LM_ONLY
        exit_at = run.exit_point(node) if not ranked else None
        if exit_at is not None:
            done = lookups.known(fields, inputs, results, run.guards.get(id(node)))
        for n in run.call_nodes(call):
            n.replace(lookup.copy())
        answer = self._answerer(scope, run)
        names = [f.name for f in call.fields]
        if node.proxy_target is not None and self._proxy is not None and exit_at is None:
            answers = self._run_proxy(node, run, answer, names, [r[1:] for r in rows], op)
            if answers is not None:
                self._insert(results, [r[0] for r in rows], answers, call.output)
                rows = []  # all answered
        batch = exit_at.batch if exit_at is not None else len(rows)
        for start in range(0, len(rows), max(batch, 1)):
            chunk = rows[start : start + batch]
            values = [r[1:] for r in chunk]
            confidences: list[float | None] = []
            answers = answer(
                node, values, op, dedup=node.dedup, total=len(rows), confidences=confidences
            )
            if ranked and any(c is not None for c in confidences):
                confidences, ranked_by = precision_first.rank_keys(
                    call, scope.rank_limit, values, answers, confidences, self._judge_embedder
                )
            self._insert(results, [r[0] for r in chunk], answers, call.output, confidences)
            if done is not None and start + batch < len(rows):
                preds = run.below(scope, node) + [run.working(node.predicate), done]
                if self._count_passing(select, preds, exit_at.rows) >= exit_at.rows:
                    op.stopped_early = True
                    break
        if done is not None:
            run.done[id(node)] = done
        if call.retrieval is not None and run.retriever is not None:
            run.note(node, run.retriever.report(call))
        if ranked:
            select.set("order", lookups.by_confidence(fields, inputs, results))
            run.note(node, f"precision-first: ranked {len(rows)} candidate rows by {ranked_by}")
        if isinstance(node, L.LMFilter):
            preds = run.below(scope, node) + [run.working(node.predicate)]
            preds += [done] if done is not None else []
            _, cnt = self.db.fetch(count_query(select, preds))
            op.rows_out = cnt[0][0]
        else:
            op.rows_out = op.rows_in

    def _answerer(self, scope: L.ScopePlan, run: QueryRun) -> Answerer:
        """``(node, values, stats, **options) -> answers`` for the scope's LM operators:
        each node's LM task with the run inputs only the coordinator can compute (the
        rows' retrieved contexts, the scope's calibration sample, the operator's prior)."""
        rows_of = run.samples.get(id(scope))

        def answer(node: L.LMOperator, values: list[tuple], op, **options) -> list:
            task = node.task
            contexts = None
            if task.with_context and run.retriever is not None:
                contexts = run.retriever.contexts(node.call, values)
            sample = None
            if rows_of is not None and not task.with_context:
                sample = lambda: rows_of(node.call)  # noqa: E731 (fetched on first use)
            lm = self._lm()
            prior = lm.task_prior(task, op, sample)  # computed once, sent with the rows
            return lm.run_task(
                task,
                values,
                op,
                contexts=contexts,
                calibration_sample=sample,
                prior=prior,
                **options,
            )

        return answer

    def _judge_embedder(self):
        """MiniLM from the connection's embedders, or None (no other embedder judges)."""
        if self._proxy is None:
            return None
        _, embedders, _ = self._proxy()
        return next((e for e in embedders if e.id == MiniLMEmbedder.id), None)

    def _run_proxy(
        self, node: L.LMOperator, run: QueryRun, answer: Answerer, names, values, op
    ) -> list | None:
        store, embedders, seed = self._proxy()

        def source_hashes(node: L.LMOperator, names: list[str]) -> set[str]:
            _, rows = self.db.fetch(f"SELECT DISTINCT * FROM ({node.proxy_source})")
            return {text_hash(render(names, r)) for r in rows}

        budget = self._lm().budget
        check = budget.check if budget is not None else None
        runner = ProxyRunner(answer, check, store, embedders, source_hashes, seed)
        answers = runner.run(node, names, values, op)
        if runner.report is not None:  # EXPLAIN ANALYZE and the REPL show the decision
            run.proxy_reports[id(node)] = runner.report
            run.note(node, runner.report.summary())
        return answers

    def _count_passing(self, select: exp.Select, preds: list[exp.Expression], cap: int) -> int:
        """Rows passing ``preds``, counted up to ``cap``."""
        inner = scope_query(select, [exp.Literal.number(1)], preds)
        _, rows = self.db.fetch(f"SELECT count(*) FROM ({inner} LIMIT {cap})")
        return rows[0][0]

    def _insert(
        self,
        table: str,
        idx: list[int],
        values: list,
        out_type: OutputType,
        rank_keys: list[float | None] | None = None,
    ) -> None:
        """Append answers (and precision-first order keys) to a results table."""
        if not idx:
            return
        if out_type.duckdb_type == "JSON":
            column = pa.array(values, type=pa.string())
        else:
            column = pa.array(values)
        rank = rank_keys if rank_keys else [None] * len(idx)
        data = pa.table(
            {
                "__idx": pa.array(idx, type=pa.int64()),
                "__out": column,
                "__rank": pa.array(rank, type=pa.float64()),
            }
        )
        view = f"{table}_batch"
        self.db.load(f"INSERT INTO {table} SELECT __idx, __out, __rank FROM {view}", view, data)
