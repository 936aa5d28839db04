"""The physical plan's stages: what the engine runs, each complete in itself.

A stage is a plain value of SQL text and LM tasks, compiled by
:mod:`~semql.planner.physical.compiler` for one set of run-time choices. The engine
runs them in order and decides nothing: it creates the temp tables a stage names, hands
an LM stage's task and rows to the LM side, runs its checks, and writes the answers back.
Temp tables carry the run's prefix, so one query's tables never meet another's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from semql.grammar.types import OutputType

from .task import LMTask

if TYPE_CHECKING:
    from ..calls import LMCall


@dataclass(frozen=True)
class ExitCheck:
    """Early exit (rules/early_exit.py): stop feeding rows to the LM once ``rows`` pass,
    checked every ``batch`` rows with ``count_sql`` (rows passing so far, up to ``rows``)."""

    rows: int
    batch: int
    count_sql: str


@dataclass(frozen=True)
class RankOrder:
    """Precision-first LIMIT (rules/precision_first.py) applies to this stage: the
    candidate rows whose arguments are among ``sample_sql``'s (at most ``sample_rows``
    distinct tuples, in hash order: the same whatever rows a plan lets through) are
    answered first and ranked by their answers' confidence; rows after them only fill
    the LIMIT when fewer passed, in input order. ``rank_by`` is ``"lm"`` or
    ``"lm+embedding"``."""

    rank_by: str
    sample_sql: str
    sample_rows: int
    examples: tuple = ()  # the call's, which name texts for its answers


@dataclass(frozen=True)
class RankCheck:
    """Precision-first LIMIT is defined for a scope: it ranks where the runtime gives
    label scores for ``output``. ``count_sql`` counts the candidate rows (the cost model
    and EXPLAIN say whether all of them or a sample of ``sample_rows`` are ranked)."""

    count_sql: str
    sample_rows: int
    output: OutputType


@dataclass(frozen=True)
class ProxySpec:
    """A proxy model may answer instead of the LM, keeping ``target`` agreement; its
    embedding view covers the rows of ``source_sql``."""

    target: float
    source_sql: str
    names: tuple[str, ...]  # the call's field names, as the embedded texts show them


@dataclass(frozen=True)
class LMStage:
    """One LMMap or LMFilter: its input rows into ``inputs``, its answers into ``results``.

    ``setup`` runs first (the naive plan's whole rows, materialised); ``create_inputs``
    holds the input query with guard (short-circuit), projection, dedup and prefix order
    applied; ``rows_sql`` reads the rows to answer. ``sample_sql`` gives the rows a
    ``batch`` calibration prior is drawn from. ``rows_out_sql`` counts a filter's rows.
    """

    key: int  # the plan operator's key for the run's figures (EXPLAIN ANALYZE)
    title: str
    task: LMTask
    inputs: str
    results: str
    setup: tuple[str, ...]
    create_inputs: str
    create_results: str
    rows_sql: str
    sample_sql: str
    source_sql: str  # the operator's rows before dedup (EXPLAIN shows it)
    # The short-circuit guard's conditions that read no LM answer: the cost model counts
    # the rows needing an answer with them before anything runs.
    known_guard: str | None = None
    dedup: bool = True
    rows_out_sql: str | None = None
    exit: ExitCheck | None = None
    rank: RankOrder | None = None
    proxy: ProxySpec | None = None
    retrieval: LMCall | None = None  # the call whose retrieval gives each row a context


@dataclass(frozen=True)
class TopKStage:
    """A LIMIT fixed before the SELECT list's LM calls (late_select's top-k)."""

    key: int
    create_sql: str


@dataclass(frozen=True)
class JoinStage:
    """LLMJoin: distinct left and right values; the LM maps each left value to one of its
    closest right values (or none), and the mapping goes into ``table``."""

    key: int
    title: str
    question: str
    examples: tuple
    left_sql: str
    right_sql: str
    table: str


@dataclass(frozen=True)
class SampledCall:
    """One LM call of a predicate tried on the sample: its distinct argument tuples
    (``args_sql``) answered into the view ``answers``."""

    key: int  # the LM operator the call belongs to
    title: str
    task: LMTask
    args_sql: str
    answers: str
    columns: tuple[str, ...]  # the answers view's argument columns, before ``__out``
    sample_sql: str
    retrieval: LMCall | None = None


@dataclass(frozen=True)
class SampledUnit:
    """One predicate of a reorder group on the sample: its calls and the count of sample
    rows it passes (``count_sql`` gives passing rows, then all rows)."""

    key: int  # the filter that finishes the predicate
    calls: tuple[SampledCall, ...]
    count_sql: str


@dataclass(frozen=True)
class GroupSample:
    """predicate_order: the group's first rows (``sample_sql``) as the view ``view``, each
    predicate measured on them; the planner then orders the group
    (:meth:`Compiled.after_sampling`)."""

    scope: int
    group: int
    view: str
    sample_sql: str
    units: tuple[SampledUnit, ...]


@dataclass(frozen=True)
class QAContext:
    """One context of an LLMQA call: ``rows`` (a subquery's table), ``text`` (a literal),
    ``values`` (an expression's values, one line each) or ``retrieval``."""

    kind: str
    sql: str = ""
    text: str = ""


@dataclass(frozen=True)
class QAStage:
    """One LLMQA answer, which later stages read as a constant."""

    key: int
    title: str
    call: LMCall
    contexts: tuple[QAContext, ...]


Stage = LMStage | TopKStage | JoinStage | GroupSample


@dataclass(frozen=True)
class ScopeStages:
    """One scope's stages in run order, with its precision-first check (run first)."""

    name: str
    stages: tuple[Stage, ...]
    rank_check: RankCheck | None = None
