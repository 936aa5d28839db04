"""Runs one LM operator's prompts: result cache first, then the runtime, in batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from semql.errors import ExecutionError
from semql.grammar.types import OutputType
from semql.planner.physical import LMTask
from semql.planner.physical.prompt_format import MAX_FIELD_CHARS, PromptBuilder
from semql.planner.physical.task import calibration_value

from ..retrieval.answers import answer_with_context
from ..retrieval.retriever import RowContext
from ..runtimes.runtime import Runtime
from . import closed_set, wording_check
from .batch_ahead import BatchAhead
from .block_prefetch import BlockPrefetch
from .budget import Budget
from .closed_set import Prior
from .prefetch import Prefetch
from .priors import Priors, Sample
from .result_cache import ResultCache, cache_key
from .stats import OperatorStats, prefix_hits
from .window import Window

Progress = Callable[[OperatorStats, int, int], None]
CACHE_FLUSH_ROWS = 16  # new answers are committed to the result cache this often


def _parse(out_type: OutputType, text: str, runtime):
    try:
        return out_type.parse(text)
    except (ValueError, TypeError) as err:
        raise ExecutionError(
            f"model {runtime.path} answered {text[:80]!r}, which is not a valid {out_type}: {err}"
        ) from None


class LMExecutor:
    """Turns rows into prompts, answers them (cache or model) and parses the answers."""

    def __init__(
        self,
        runtime: Runtime,
        cache: ResultCache,
        progress: Progress | None = None,
        budget: Budget | None = None,
        calibration: str = closed_set.DEFAULT_METHOD,
        check_wording: bool = False,
    ):
        self.runtime = runtime
        self.check_wording = check_wording  # wording_check.py, once per operator
        self.budget = budget
        self.calibration = calibration_value(calibration, "calibration")
        self.priors = Priors(self)
        self.cache = cache
        self.progress = progress
        self.prompts = PromptBuilder(runtime.style, runtime.format_chat if runtime.local else None)
        self.window = Window(runtime, self.prompts)
        # Answers given while planning (sampled selectivities), reused when the operator
        # runs, so a sample costs no extra LM calls even without the result cache.
        self.remembered: dict[str, str] = {}

    def answer(
        self,
        question: str,
        out_type: OutputType,
        names: Sequence[str],
        rows: Sequence[tuple],
        stats: OperatorStats,
        examples: Sequence[tuple] = (),
        dedup: bool = True,
        total: int | None = None,
        remember: bool = False,
        field_orders: Sequence[Sequence[int]] | None = None,
        run_order: Sequence[int] | None = None,
        calibration: str | None = None,
        confidences: list | None = None,
        max_chars: int | None = MAX_FIELD_CHARS,
        calibration_sample: Sample | None = None,
        prior: Prior | None = None,
        over_rows: bool = False,
    ) -> list:
        """One parsed answer per row; a row whose fields are all NULL answers NULL.

        ``remember``: keep the answers for later calls of this executor (see remembered).
        ``field_orders[i]``: the order of row i's fields in its prompt (the prompt layout);
        ``run_order``: the order to ask the rows in (answers come back in row order).
        ``calibration``: this call's method for closed sets (else the executor's).
        ``max_chars``: the cut of each field value (None: an LLMQA context, already
        fitted to the window by window.py).
        ``calibration_sample``: the rows of a ``batch`` or ``table`` prior (priors.py).
        ``prior``: the operator's prior, computed before (:meth:`task_prior`); else here.
        ``confidences``: if given, filled with each row's calibrated probability of its
        answer (None where the answer was generated, not scored): precision-first LIMIT
        ranks by it.
        ``over_rows``: the rows of an LM map or filter (run_task). Their generated answers
        share their answer steps on a runtime that has ``step_rows`` (shared_steps.py),
        every row of them, so a row's answer does not depend on how many needed the model;
        a one-answer call (LLMQA, a join's pair) stays one row at a time.
        Closed sets on a runtime that can score labels are decided from every label's
        probability (executors/lm/closed_set.py); the result cache keeps those scores.
        """
        started = time.perf_counter()
        spec = out_type.spec()
        scored = self.scores(out_type)
        steps = over_rows and not scored and getattr(self.runtime, "step_rows", 0) > 0
        grammar_id = _grammar_id(spec, scored)
        if scored:
            method = calibration or self.calibration
            if prior is None:
                prior = self.priors.prior(
                    question, out_type, names, examples, method, stats, calibration_sample
                )
            stats.calibration = prior.describe(out_type.labels())
            if self.check_wording and calibration_sample is not None and not stats.wording_check:
                wording_check.check(
                    self,
                    question,
                    out_type,
                    names,
                    examples,
                    method,
                    calibration_sample,
                    prior,
                    stats,
                )
        cells_of = [
            [(names[j], row[j]) for j in (field_orders[i] if field_orders else range(len(row)))]
            for i, row in enumerate(rows)
        ]
        prompts: list[str | None] = [
            None
            if row and all(v is None for v in row)
            else self.prompts.build(
                question,
                out_type,
                [n for n, _ in cells],
                [v for _, v in cells],
                examples,
                max_chars,
            )
            for row, cells in zip(rows, cells_of, strict=True)
        ]
        for i, prompt in enumerate(prompts):
            if prompt is not None and not self.window.fits(prompt, out_type):
                prompts[i] = self.window.fitted(
                    question, out_type, cells_of[i], examples, max_chars
                )
                stats.fields_cut += 1
        model = self._model_key(steps)
        keys = [cache_key(model, grammar_id, p) if p is not None else None for p in prompts]
        cached = self.cache.get_many([k for k in keys if k is not None])
        texts: dict[str, str] = {}
        fresh: list[tuple[str, str]] = []
        out: list = [None] * len(rows)
        conf: list[float | None] = [None] * len(rows)
        previous: list | None = None  # fields of the last prompt sent to the model
        order = list(run_order) if run_order is not None else list(range(len(rows)))
        ahead = self._prefetch(
            order, prompts, keys, cached, dedup, remember, out_type, scored, steps
        )
        try:
            for done, i in enumerate(order):
                prompt, key = prompts[i], keys[i]
                if prompt is None:
                    continue
                text = texts.get(key) if dedup else None
                if text is None and key in self.remembered:
                    text = self.remembered[key]
                    if not self.priors.claim(key, stats):
                        stats.cache_hits += 1
                if text is None and key in cached:
                    text = cached[key]
                    stats.cache_hits += 1
                generated = text is None
                if generated:
                    if ahead is not None:
                        text = self._account(ahead.take(i), scored, stats)
                    else:
                        text = self._ask(prompt, out_type, scored, stats, steps=steps)
                    stats.prefix_hit_count += prefix_hits(previous, cells_of[i])
                    previous = cells_of[i]
                if scored:
                    logprobs = closed_set.decode(text)
                    out[i] = closed_set.answer_value(
                        out_type, closed_set.probabilities(logprobs), prior
                    )
                    conf[i] = closed_set.row_confidence(out_type, logprobs, prior)
                else:
                    out[i] = _parse(out_type, text, self.runtime)
                if key not in texts:
                    stats.answer_counts[_shown(out[i])] += 1
                if generated:  # only answers that parse are cached
                    fresh.append((key, text))
                    if len(fresh) >= CACHE_FLUSH_ROWS:  # a crash later keeps these answers
                        self.cache.put_many(fresh)
                        fresh = []
                texts[key] = text
                if remember:
                    self.remembered[key] = text
                if self.progress is not None:
                    self.progress(stats, stats.rows_in + done + 1, total or len(rows))
        finally:  # answers already paid for are kept, also when the query is cancelled
            if ahead is not None:
                ahead.close()
                stats.retries += ahead.retries
            self.cache.put_many(fresh)
            stats.seconds += time.perf_counter() - started
        stats.rows_in += len(rows)
        if confidences is not None:
            confidences[:] = conf
        return out

    def scored_key(self, out_type: OutputType, prompt: str) -> str:
        """The result-cache key of a prompt whose labels are scored."""
        return cache_key(self._model_key(), _grammar_id(out_type.spec(), scored=True), prompt)

    def ask_scored_many(
        self, prompts: list[str], out_type: OutputType, stats: OperatorStats, calibration: bool
    ) -> list[str]:
        """The prompts' label scores (calibration calls, or rows' LM calls), as many to a
        decode as the runtime batches and the query's caps allow (exactly, as rows are)."""
        out: list[str] = []
        while len(out) < len(prompts):
            rest = prompts[len(out) :]
            n = len(rest) if self.budget is None else self.budget.room(len(rest))
            if n == 0:
                self.budget.check()  # raises: the cap is reached
            for result in self.runtime.score_many(rest[:n], out_type):
                out.append(self._account(result, True, stats, calibration))
        return out

    def _model_key(self, steps: bool = False) -> str:
        """The model part of result-cache keys: weights and decoding version (the shared-
        steps recipe's own, for the generated answers of a map's rows)."""
        decoding = self.runtime.rows_decoding if steps else self.runtime.decoding
        return f"{self.runtime.model_id}|decoding {decoding}"

    def scores(self, out_type: OutputType) -> bool:
        """Whether answers of this type are decided from label scores (with a confidence)."""
        labels = out_type.labels()
        return (
            labels is not None
            and len(labels) <= closed_set.MAX_SCORED_LABELS
            and self.runtime.label_scores
        )

    def _ask(
        self,
        prompt: str,
        out_type: OutputType,
        scored: bool,
        stats: OperatorStats,
        calibration: bool = False,
        steps: bool = False,
    ) -> str:
        """One model call: the labels' log-probabilities (JSON) or a generated text.

        ``calibration``: a content-free prompt for the operator's prior, counted apart
        from the rows' calls (``lm_calls`` stays one per distinct input) but within the
        query's caps and token figures."""
        if self.budget is not None:
            self.budget.check()
        result = self._request(prompt, out_type, scored, steps)
        return self._account(result, scored, stats, calibration)

    def _request(self, prompt: str, out_type: OutputType, scored: bool, steps: bool = False):
        """The runtime's answer to one prompt (called from prefetch threads too)."""
        if scored:
            return self.runtime.score(prompt, out_type)
        if steps:
            return self.runtime.generate_rows([prompt], out_type)[0]
        return self.runtime.generate(prompt, out_type)

    def _account(self, result, scored: bool, stats: OperatorStats, calibration: bool = False):
        """A runtime answer as the text kept in the result cache, counted in the stats
        and the query's budget."""
        if scored:
            text = closed_set.encode(result.logprobs)
            generated = 1 + result.extra_steps
        else:
            text, generated = result.text, result.generated_tokens
        if self.budget is not None:
            self.budget.spend(result.prompt_tokens)
        if calibration:
            stats.calibration_calls += 1
        else:
            stats.lm_calls += 1
        stats.prompt_tokens += result.prompt_tokens
        stats.cached_prompt_tokens += result.cached_tokens
        if result.worker:
            stats.count_worker(result.worker, result.prompt_tokens, result.cached_tokens)
        stats.generated_tokens += generated
        return text

    def _prefetch(self, order, prompts, keys, cached, dedup, remember, out_type, scored, steps):
        """Requests sent ahead for a runtime that takes several at once (prefetch.py),
        rows answered several to a decode in-process or with their steps shared
        (batch_ahead.py): the rows the loop of ``answer`` will ask the model, in its
        order. None for a runtime that takes one at a time."""
        batched = self.runtime.batch_rows > 1 or (steps and not self.runtime.blocks)
        if self.runtime.concurrency < 2 and not batched:
            return None
        seen: set[str] = set()
        jobs = []
        for i in order:
            key = keys[i]
            if key is None or ((dedup or remember) and key in seen):
                continue
            seen.add(key)
            if key not in self.remembered and key not in cached:
                jobs.append(i)
        if len(jobs) < 2:
            return None
        if batched:
            prompts_of = {i: prompts[i] for i in jobs}
            return BatchAhead(self.runtime, prompts_of, jobs, out_type, scored, self.budget, steps)
        if self.runtime.blocks:
            prompts_of = {i: prompts[i] for i in jobs}
            return BlockPrefetch(
                self.runtime, prompts_of, jobs, out_type, scored, self.budget, steps
            )
        request = lambda i: self._request(prompts[i], out_type, scored)  # noqa: E731
        return Prefetch(request, jobs, self.runtime.concurrency, self.budget)

    def run_task(
        self,
        task: LMTask,
        values: list[tuple],
        stats: OperatorStats,
        contexts: Sequence[RowContext | None] | None = None,
        calibration_sample: Sample | None = None,
        **options,
    ) -> list:
        """``answer`` for the rows of an LMMap/LMFilter's task (planner/physical.py): its
        question, type, field names and examples, each row laid out as the task's layout
        says (field order per row; with reorder_rows, the run order, within the rows
        handed over, so under an early exit the rows asked before the exit stay the same).

        Run inputs the coordinator computes: ``contexts``, each row's retrieved context
        for a task ``with_context`` (its prompt's last field;
        executors/retrieval/answers.py); ``calibration_sample``, the operator's rows for
        a ``batch`` prior; ``prior`` (an option), the prior :meth:`task_prior` gave, so a
        worker that is sent it decides as this process does without asking for it."""
        orders = task.field_orders(values)
        if orders is not None:
            options["field_orders"] = orders
            run_order = task.run_order(values)
            if run_order is not None:
                options["run_order"] = run_order
        options.setdefault("calibration", task.calibration)
        options["over_rows"] = True
        if task.with_context:
            if contexts is None or len(contexts) != len(values):
                raise ExecutionError(f"{task.label}: retrieval needs each row's context")
            return answer_with_context(self, task, values, contexts, stats, **options)
        return self.answer(
            task.question,
            task.output,
            task.names,
            values,
            stats,
            task.examples,
            calibration_sample=calibration_sample,
            **options,
        )

    def task_prior(
        self, task: LMTask, stats: OperatorStats, calibration_sample: Sample | None = None
    ) -> Prior | None:
        """The prior a task's closed-set answers divide by, computed once per executor
        (None: its answers are not decided from label scores, or rows come with a context,
        whose narrowed options take no prior)."""
        if task.with_context or not self.scores(task.output):
            return None
        t = task
        return self.priors.prior(
            t.question, t.output, t.names, t.examples, t.calibration, stats, calibration_sample
        )


def _grammar_id(spec, scored: bool) -> str:
    """The grammar part of result-cache keys; scored closed sets keep label scores, not
    texts, so they key apart from generated answers to the same grammar."""
    return f"{'scores' if scored else spec.kind}:{spec.source}"


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
