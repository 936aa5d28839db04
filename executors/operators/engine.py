"""Executes a QueryPlan by running its physical plan: a loop over compiled stages.

How LM results meet the rest of the query: for each LM operator the planner's physical
plan (planner/physical/) names two temp tables, the operator's distinct argument tuples
and its answers, and has already written every later stage and the final statement to
read the answers through correlated lookups, which DuckDB decorrelates into hash joins.
So joins, aggregates, ORDER BY and LIMIT keep DuckDB's exact semantics. The engine
creates the tables a stage names, hands an LM stage's task and rows to the LM side with
the run inputs only it can compute (retrieved contexts, the calibration sample and
prior), runs the stage's checks (early exit, precision-first), and writes the answers.
Choices only the run can make (LLMQA answers, whether precision-first applies, the
order of a group of LM filters) go back to the planner's :class:`Compiled`, which
returns the plan under them. Temp tables are dropped afterwards, on success or failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import polars as pl
import pyarrow as pa
from sqlglot import exp

from semql.grammar.types import OutputType
from semql.planner.physical import GroupSample, JoinStage, LMStage, TopKStage
from semql.planner.physical.compiler import Compiled

from ..lm.lm_executor import LMExecutor
from ..lm.stats import QueryStats
from ..proxy.embedding_views import EmbeddingStore, text_hash
from ..proxy.embeddings import LexicalEmbedder, MiniLMEmbedder
from ..proxy.proxy_executor import ProxyRunner, render
from ..retrieval.retriever import Retriever
from . import precision_first
from .database import Database
from .filter_order import measure_group
from .join_runner import run_join
from .qa_runner import run_qa
from .run_state import QueryRun

Answerer = Callable[..., list]  # (stage, values, stats, **options) -> one answer per row


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

    def run(self, plan, params=None, stats: QueryStats | None = None) -> pl.DataFrame:
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
                compiled = self._adopt(run, plan.physical.for_run(self.db.prefix))
                for i in range(len(plan.constants)):
                    answer = run_qa(compiled.qa[i], run, self.db.fetch, self._lm(), run.retriever)
                    compiled = self._adopt(run, compiled.with_answer(answer))
                assert compiled.pending == 0, "scopes run once every LLMQA answer is known"
                for index in range(len(compiled.scopes)):
                    compiled = self._run_scope(compiled, index, run, plan.profile)
                if run.retriever is not None:
                    stats.warnings += run.retriever.warnings
                return self.db.frame(
                    compiled.final_sql,
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

    def _adopt(self, run: QueryRun, compiled: Compiled) -> Compiled:
        """Run under ``compiled`` from now on; its temp tables are the query's to drop."""
        run.compiled = compiled
        self.db.own(compiled.temp_tables)
        return compiled

    def _make_retriever(self, plan) -> Retriever:
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

    # -- stages ------------------------------------------------------------------------

    def _run_scope(self, compiled: Compiled, index: int, run: QueryRun, profile) -> Compiled:
        """Run one scope's stages in order; precision-first's check and a group sample
        each return the plan under the choice they make, and the run goes on in it."""
        check = compiled.scopes[index].rank_check
        if precision_first.applies(check, self._lm().scores):
            compiled = self._adopt(run, compiled.ranking(index))
        answer = self._answerer(run)
        j = 0
        while j < len(compiled.scopes[index].stages):
            stage = compiled.scopes[index].stages[j]
            if isinstance(stage, GroupSample):  # the same j is then the group's first
                measured = measure_group(stage, self.db, run, answer)
                compiled, notes = compiled.after_sampling(stage, measured, profile)
                self._adopt(run, compiled)
                for key, text in notes.items():
                    run.note(key, text)
                continue
            if isinstance(stage, TopKStage):
                self.db.exec(stage.create_sql)
            elif isinstance(stage, LMStage):
                self._run_lm(stage, run, answer)
            elif isinstance(stage, JoinStage):
                run_join(stage, run, self.db, self._lm())
            j += 1
        return compiled

    def _run_lm(self, stage: LMStage, run: QueryRun, answer: Answerer) -> None:
        """One LMMap/LMFilter: its input rows, answered in batches between early-exit
        checks (or by a proxy model), into its results table."""
        op = run.op_stats(stage.key, stage.title)
        for sql in stage.setup:
            self.db.exec(sql)
        self.db.exec(stage.create_inputs)
        self.db.exec(stage.create_results)
        _, rows = self.db.fetch(stage.rows_sql)
        output = stage.task.output
        ranked_by = precision_first.LM_ONLY
        if stage.proxy is not None and self._proxy is not None:
            answers = self._run_proxy(stage, run, answer, [r[1:] for r in rows], op)
            if answers is not None:
                self._insert(stage.results, [r[0] for r in rows], answers, output)
                rows = []  # all answered
        total = len(rows)
        ranked: list = []
        if stage.rank is not None:  # the sample first, as one batch, and only it ranked
            ranked, rows = precision_first.sample_first(
                rows, self.db.fetch(stage.rank.sample_sql)[1]
            )
        batch = stage.exit.batch if stage.exit is not None else len(rows)
        chunks = [ranked] if ranked else []
        chunks += [rows[i : i + batch] for i in range(0, len(rows), max(batch, 1))]
        for i, chunk in enumerate(chunks):
            values = [r[1:] for r in chunk]
            confidences: list[float | None] = []
            answers = answer(
                stage, values, op, dedup=stage.dedup, total=total, confidences=confidences
            )
            if stage.rank is not None and chunk is not ranked:
                confidences = [None] * len(chunk)  # after the sample: ranked after it
            elif chunk is ranked and any(c is not None for c in confidences):
                confidences, ranked_by = precision_first.rank_keys(
                    output, stage.rank, values, answers, confidences, self._judge_embedder
                )
            self._insert(stage.results, [r[0] for r in chunk], answers, output, confidences)
            if stage.exit is not None and i + 1 < len(chunks):
                _, passed = self.db.fetch(stage.exit.count_sql)
                if passed[0][0] >= stage.exit.rows:
                    op.stopped_early = True
                    break
        if stage.retrieval is not None and run.retriever is not None:
            run.note(stage.key, run.retriever.report(stage.retrieval))
        if stage.rank is not None:
            which = f"the {len(ranked)} sampled of {total}" if len(ranked) < total else "all"
            run.note(stage.key, f"precision-first: ranked {which} input rows by {ranked_by}")
        if stage.rows_out_sql is not None:
            _, cnt = self.db.fetch(stage.rows_out_sql)
            op.rows_out = cnt[0][0]
        else:
            op.rows_out = op.rows_in

    def _answerer(self, run: QueryRun) -> Answerer:
        """``(stage, values, stats, **options) -> answers``: the stage's LM task with the
        run inputs only the coordinator can compute (the rows' retrieved contexts, the
        calibration sample, the operator's prior)."""

        def answer(stage, values: list[tuple], op, **options) -> list:
            task = stage.task
            contexts = None
            if task.with_context and run.retriever is not None:
                contexts = run.retriever.contexts(stage.retrieval, values)
            sample = None
            if not task.with_context:
                sample = lambda: run.sample_rows(stage.sample_sql, self.db.fetch)  # noqa: E731
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
        self, stage: LMStage, run: QueryRun, answer: Answerer, values, op
    ) -> list | None:
        store, embedders, seed = self._proxy()

        def source_hashes(stage: LMStage, names: list[str]) -> set[str]:
            _, rows = self.db.fetch(f"SELECT DISTINCT * FROM ({stage.proxy.source_sql})")
            return {text_hash(render(names, r)) for r in rows}

        budget = self._lm().budget
        check = budget.check if budget is not None else None
        runner = ProxyRunner(answer, check, store, embedders, source_hashes, seed)
        answers = runner.run(stage, list(stage.proxy.names), values, op)
        if runner.report is not None:  # EXPLAIN ANALYZE and the REPL show the decision
            run.proxy_reports[stage.key] = runner.report
            run.note(stage.key, runner.report.summary())
        return answers

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
