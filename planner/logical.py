"""The logical plan: relational and LM operators over one SELECT scope each.

The plan is the single source of truth for execution and EXPLAIN. Relational operators
(Scan, Join, Filter, Aggregate, Sort, Limit, Project) run inside DuckDB as part of the
scope's SQL; LM operators (LMFilter, LMMap, LMJoin, LMQA) run in the LM runtime on the
rows that the operators *below* them produce. Moving a Filter below an LMFilter
(pushdown) is therefore exactly what makes the LM see fewer rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from .calls import LMCall

if TYPE_CHECKING:
    from .physical.task import LMTask
    from .prefix.layout import PromptLayout


@dataclass(eq=False)
class PlanNode:
    children: list[PlanNode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # rules that fired here
    estimate: object = None  # the cost model's figures (planner.cost.Estimate)

    @property
    def child(self) -> PlanNode | None:
        return self.children[0] if self.children else None

    def title(self) -> str:
        return type(self).__name__

    def walk(self):
        """Pre-order traversal."""
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(eq=False)
class Scan(PlanNode):
    table: str = ""
    alias: str = ""

    def title(self) -> str:
        alias = f" AS {self.alias}" if self.alias and self.alias != self.table else ""
        return f"Scan {self.table}{alias}"


@dataclass(eq=False)
class DuckDBPlan(PlanNode):
    """An opaque relational sub-plan that DuckDB runs as one piece of SQL."""

    sql: str = ""

    def title(self) -> str:
        text = " ".join(self.sql.split())
        return "DuckDB " + (text if len(text) <= 100 else text[:97] + "...")


@dataclass(eq=False)
class Join(PlanNode):
    kind: str = "INNER"
    condition: str = ""

    def title(self) -> str:
        on = f" ON {self.condition}" if self.condition else ""
        return f"Join {self.kind}{on}"


@dataclass(eq=False)
class Filter(PlanNode):
    predicates: list[exp.Expression] = field(default_factory=list)
    role: str = ""  # "where": the scope's WHERE as written; "having"; "" otherwise

    def __post_init__(self):
        self.text = " AND ".join(
            p.sql(dialect="duckdb", normalize_functions=False) for p in self.predicates
        )

    def title(self) -> str:
        return "Filter " + self.text


@dataclass(eq=False)
class LMOperator(PlanNode):
    """An operator that asks the LM one question per input row (LMMap, LMFilter).

    The flags are set by the rewrite rules (planner/rules) and read by the physical plan's
    compiler (planner/physical/compiler.py), which writes the operator's stage from them
    with the rules' own functions.
    """

    call: LMCall | None = None
    predicate: exp.Expression | None = None  # the WHERE conjunct this call belongs to
    dedup: bool = False  # one LM call per distinct input tuple
    prune: bool = False  # materialise only the call's arguments, not whole rows
    short_circuit: bool = False  # skip rows whose predicate the cheap side decides
    reorder_group: int | None = None  # filters of one group are ordered at run time
    layout: PromptLayout | None = None  # field order per row (planner/prefix/layout.py)
    reorder_rows: bool = False  # ask rows in the layout's order (prefix_reorder)
    proxy_target: float | None = None  # agreement with the LM a proxy model must keep
    proxy_source: str | None = None  # SQL of the rows its embedding view covers
    task: LMTask | None = None  # what the LM side runs (planner/physical.py), set last


@dataclass(eq=False)
class LMFilter(LMOperator):
    """Keep rows whose predicate (which contains ``call``) holds."""

    early_exit: int | None = None  # stop once this many rows pass (LIMIT k above)
    batch_rows: int = 8  # rows fed to the LM between early-exit checks

    def title(self) -> str:
        text = self.predicate.sql(dialect="duckdb", normalize_functions=False)
        return f"LMFilter {text}  -> {self.call.output}"


@dataclass(eq=False)
class LMMap(LMOperator):
    """Add the value of ``call`` to each row."""

    def title(self) -> str:
        return f"LMMap {self.call.label}  -> {self.call.output}"


@dataclass(eq=False)
class LMJoin(PlanNode):
    """Join rows whose values the LM aligns; children are the left and right inputs."""

    call: LMCall | None = None
    join: exp.Join | None = None
    # WHERE conjuncts over the left side's tables only (pushdown): the LM maps only the
    # left values of rows that can reach the output.
    left_predicates: list[exp.Expression] = field(default_factory=list)

    def title(self) -> str:
        return f"LMJoin {self.call.label}  -> {self.call.output}"


@dataclass(eq=False)
class LMQA(PlanNode):
    """One answer over a context; substituted into the query as a constant."""

    call: LMCall | None = None

    def title(self) -> str:
        return f"LMQA {self.call.label}  -> {self.call.output}"


@dataclass(eq=False)
class Aggregate(PlanNode):
    group_by: list[str] = field(default_factory=list)

    def title(self) -> str:
        keys = ", ".join(self.group_by)
        return f"Aggregate GROUP BY {keys}" if keys else "Aggregate"


@dataclass(eq=False)
class Sort(PlanNode):
    keys: list[str] = field(default_factory=list)

    def title(self) -> str:
        return "Sort " + ", ".join(self.keys)


@dataclass(eq=False)
class Limit(PlanNode):
    count: str = ""
    offset: str = ""
    materialize: bool = False  # fix the limited rows before the LM calls above run

    def title(self) -> str:
        return f"Limit {self.count}" + (f" OFFSET {self.offset}" if self.offset else "")


@dataclass(eq=False)
class Project(PlanNode):
    columns: list[str] = field(default_factory=list)
    distinct: bool = False

    def title(self) -> str:
        cols = ", ".join(self.columns)
        if len(cols) > 100:
            cols = cols[:97] + "..."
        return ("Project DISTINCT " if self.distinct else "Project ") + cols


@dataclass(eq=False)
class RankLimit:
    """Precision-first LIMIT: ``LIMIT k`` (no ORDER BY) over a WHERE with one LM condition
    returns the k passing rows the model is surest of, not the first k it finds.

    The rows ranked are the candidates (the rows that pass the WHERE's relational
    conjuncts) whose arguments are among the first ``sample_rows`` distinct tuples in
    hash order: all of them when there are that few, else a fixed sample, so the cost
    stays bounded and there is no cliff where one more candidate turns ranking off. When
    fewer than k sampled rows pass, the first passing rows after them fill the LIMIT.
    Part of the query's meaning, not a rewrite: naive plans rank the same way.
    """

    call: LMCall
    candidates: list[exp.Expression]  # the WHERE's conjuncts without LM calls
    sample_rows: int
    rank_by: str = "lm"  # PlanOptions.rank_by: the LM's confidence, or with the embedder


@dataclass(eq=False)
class ScopePlan:
    """The plan of one SELECT that contains LM calls (the main query, a CTE, a subquery)."""

    name: str
    select: exp.Select
    root: PlanNode
    rank_limit: RankLimit | None = None
    # The WHERE's conjuncts without LM calls: the rows a "batch" calibration prior is
    # sampled from, whatever order a plan runs the conjuncts in.
    population: list[exp.Expression] = field(default_factory=list)


@dataclass(eq=False)
class QueryPlan:
    """Everything needed to run one statement.

    ``constants`` (LMQA) run first, then ``scopes`` in dependency order (CTEs and
    subqueries before the queries that read them), then the statement runs in DuckDB.
    ``statement`` is the AST with its LM calls still in place: the plan is never
    written to, so the physical plan's compiler copies it and writes each call's lookup
    of its answers (and each LLMQA's answer) into its copy (planner/physical/compiler.py).
    """

    statement: exp.Expression | None
    sql: str
    calls: list[LMCall] = field(default_factory=list)
    constants: list[LMQA] = field(default_factory=list)
    scopes: list[ScopePlan] = field(default_factory=list)
    options: object = None
    fired: list[str] = field(default_factory=list)  # rewrite rules that changed the plan
    profile: object = None  # the model speeds the estimates used (planner.cost)
    physical: object = None  # the physical plan before any run (None without LM calls)

    @property
    def has_lm(self) -> bool:
        return bool(self.calls)
