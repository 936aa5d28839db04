"""AST -> QueryPlan: find LM calls, bind and type them, and lay out each scope's operators.

Each SELECT with LM calls is first laid out naively (every LM call on every FROM row,
then the WHERE, then grouping, projection, ORDER BY, LIMIT); the rewrite rules of
planner/rules then move and annotate operators, each under its own switch.
"""

from __future__ import annotations

from typing import Protocol

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from semql.errors import BindError, TypeInferenceError
from semql.grammar.inference import ColumnFacts, InferenceConflict, infer_type
from semql.grammar.types import MAX_OPTIONS, StrType

from . import logical as L
from .calls import (
    CANONICAL_NAMES,
    Field,
    LMCall,
    field_name,
    is_lm_call,
    literal_value,
    split_arguments,
)
from .options import PlanOptions, accuracy_value, calibration_value
from .rules import RULES
from .rules.pipeline import ScopeFacts, link
from .scope_sql import conjuncts


class Catalog(Protocol):
    """What the planner may ask the database (implemented over DuckDB by the connection)."""

    def columns(self, table: str) -> dict[str, str] | None:
        """Lower-case column name -> SQL type, or None for an unknown table."""

    def distinct_values(self, table: str, column: str, limit: int) -> tuple:
        """Up to ``limit`` distinct non-null values of a column, in a stable order."""

    def query_column(self, sql: str) -> list:
        """The first column of an LM-free query."""


def _calls_in(node: exp.Expression) -> list[exp.Anonymous]:
    return [n for n in node.walk() if is_lm_call(n)]


def _owner_select(node: exp.Expression) -> exp.Expression | None:
    return node.find_ancestor(exp.Select)


class _Binder:
    """Binds LM calls of one statement against the catalog."""

    def __init__(self, catalog: Catalog, scopes: list[Scope]):
        self.catalog = catalog
        self.scope_of = {id(s.expression): s for s in scopes}
        self.calls: dict[tuple[int, str], LMCall] = {}

    # -- columns -----------------------------------------------------------------------

    def _table_of(self, col: exp.Column) -> tuple[str, str] | None:
        select = _owner_select(col)
        scope = self.scope_of.get(id(select)) if select is not None else None
        if scope is None:
            return None
        name = col.name.lower()
        sources = scope.sources
        if col.table:
            candidates = [sources.get(col.table)]
        else:
            candidates = list(sources.values())
        for source in candidates:
            if isinstance(source, exp.Table):
                cols = self.catalog.columns(source.name)
                if cols and name in cols:
                    return source.name, name
        return None

    def column_facts(self, col: exp.Column) -> ColumnFacts | None:
        found = self._table_of(col)
        if found is None:
            return None
        table, name = found
        sql_type = self.catalog.columns(table)[name]
        return ColumnFacts(
            sql_type, lambda: self.catalog.distinct_values(table, name, MAX_OPTIONS + 1)
        )

    # -- arguments ---------------------------------------------------------------------

    def _options(self, node: exp.Expression, fn: str) -> tuple:
        if isinstance(node, exp.Column):
            found = self._table_of(node)
            if found is None:
                raise BindError(f"{fn}: options={node.sql()} does not name a table column")
            values = self.catalog.distinct_values(found[0], found[1], MAX_OPTIONS + 1)
        elif isinstance(node, exp.Subquery) or isinstance(node, exp.Select):
            values = [
                v for v in self.catalog.query_column(node.sql(dialect="duckdb")) if v is not None
            ]
        else:
            values = literal_value(node, fn, "options")
            if not isinstance(values, tuple):
                values = (values,)
        values = tuple(dict.fromkeys(values))
        if not values:
            raise BindError(f"{fn}: options= is empty")
        if len(values) > MAX_OPTIONS:
            raise BindError(f"{fn}: options= has more than {MAX_OPTIONS} values")
        return values

    def _kwargs(self, fn: str, keywords: dict[str, exp.Expression]) -> dict:
        out: dict = {}
        for key, node in keywords.items():
            if key == "options":
                out[key] = self._options(node, fn)
            elif key == "examples":
                value = literal_value(node, fn, "examples")
                if not isinstance(value, tuple):
                    raise BindError(
                        f"{fn}: examples= must be tuples (field values..., answer), "
                        f"got {node.sql()}"
                    )
                rows = value if value and isinstance(value[0], tuple) else (value,)
                if not all(isinstance(r, tuple) and len(r) >= 2 for r in rows):
                    raise BindError(
                        f"{fn}: examples= must be tuples (field values..., answer), "
                        f"got {node.sql()}"
                    )
                out[key] = list(rows)
            elif key == "context":
                out[key] = node
            elif key == "calibration":
                try:
                    out[key] = calibration_value(
                        literal_value(node, fn, key), f"{fn}: calibration="
                    )
                except TypeError as err:
                    raise BindError(str(err)) from None
            elif key == "accuracy":
                try:
                    out[key] = accuracy_value(literal_value(node, fn, key), f"{fn}: accuracy=")
                except TypeError as err:
                    raise BindError(str(err)) from None
            else:
                value = literal_value(node, fn, key)
                if not isinstance(value, str):
                    raise BindError(f"{fn}: {key}= must be a string, got {node.sql()}")
                out[key] = value
        return out

    @staticmethod
    def _slot(node: exp.Anonymous) -> tuple[int, str]:
        """A call is one per (owning SELECT, text): repeats of it share one LMCall."""
        return id(_owner_select(node)), node.sql(dialect="duckdb", normalize_functions=False)

    def bound(self, node: exp.Anonymous) -> LMCall | None:
        """The LMCall already bound for ``node``, if any (no new occurrence recorded)."""
        return self.calls.get(self._slot(node))

    def bind(self, node: exp.Anonymous) -> LMCall:
        slot = self._slot(node)
        key = slot[1]
        if slot in self.calls:
            self.calls[slot].nodes.append(node)
            return self.calls[slot]
        fn = CANONICAL_NAMES[str(node.this).upper()]
        positional, keywords = split_arguments(node)
        kwargs = self._kwargs(fn, keywords)
        if fn == "LLMJoin":
            call = self._bind_join(node, key, positional, kwargs)
        else:
            call = self._bind_map_or_qa(node, fn, key, positional, kwargs)
        self.calls[slot] = call
        return call

    def _bind_map_or_qa(self, node, fn, key, positional, kwargs) -> LMCall:
        if not positional:
            raise BindError(f"{fn}: the first argument must be the question (a string)")
        question = literal_value(positional[0], fn, "the question (first argument)")
        if not isinstance(question, str):
            raise BindError(f"{fn}: the question (first argument) must be a string")
        fields: list[Field] = []
        context: list[exp.Expression] = []
        taken: set[str] = set()
        for arg in positional[1:]:
            if fn == "LLMQA":
                context.append(arg)
            elif arg.find(exp.Select) is not None:
                raise BindError(f"{fn}: a row field cannot be a subquery: {arg.sql()}")
            else:
                fields.append(Field(field_name(arg, taken), arg))
        if "context" in kwargs:
            context.append(kwargs.pop("context"))
        if fn == "LLMMap" and not fields:
            raise BindError(f"{fn}: needs at least one column to read, e.g. {fn}('q', t.col)")
        call = LMCall(len(self.calls), fn, key, [node], question, fields, kwargs, context)
        self._type(call, node)
        return call

    def _bind_join(self, node, key, positional, kwargs) -> LMCall:
        if len(positional) != 2:
            raise BindError("LLMJoin: needs exactly two columns, LLMJoin(left.col, right.col)")
        join = node.find_ancestor(exp.Join)
        if join is None or not any(n is node for n in conjuncts(join.args.get("on"))):
            raise BindError("LLMJoin: must be a condition of JOIN ... ON")
        criteria = (
            kwargs.get("join_criteria") or "Match each left value to the right value it refers to."
        )
        fields = [Field("left", positional[0]), Field("right", positional[1])]
        call = LMCall(len(self.calls), "LLMJoin", key, [node], criteria, fields, kwargs)
        call.output = StrType()
        call.type_reason = "one of the right side's values"
        return call

    def _type(self, call: LMCall, node: exp.Expression) -> None:
        try:
            inferred = infer_type(node, call.kwargs, self.column_facts, call.label, call.question)
        except InferenceConflict as err:
            raise TypeInferenceError(str(err)) from None
        except ValueError as err:
            raise TypeInferenceError(f"{call.label}: {err}") from None
        call.output, call.type_reason = inferred.type, inferred.reason


def _substitute_lm_aliases(select: exp.Select, catalog: Catalog, scope: Scope | None) -> None:
    """WHERE/HAVING references to a SELECT alias of an LM expression become the expression.

    DuckDB resolves such aliases itself, but the planner must see the LM call in the
    predicate to run it before the filter. Real columns win over aliases, as in DuckDB.
    """
    aliases = {
        e.alias: e.this
        for e in select.expressions
        if isinstance(e, exp.Alias) and _calls_in(e.this)
    }
    if not aliases:
        return
    real: set[str] = set()
    for source in scope.sources.values() if scope else []:
        if isinstance(source, exp.Table):
            real |= set(catalog.columns(source.name) or {})
    for clause in ("where", "having"):
        part = select.args.get(clause)
        if part is None:
            continue
        for col in list(part.find_all(exp.Column)):
            if not col.table and col.name in aliases and col.name.lower() not in real:
                col.replace(aliases[col.name].copy())


def _name_lm_items(select: exp.Select) -> None:
    """An unaliased SELECT item with an LM call is named after the call as written.

    Otherwise DuckDB would name the column after the lookup that replaces the call.
    """
    for item in list(select.expressions):
        if not isinstance(item, exp.Alias) and _calls_in(item):
            name = item.sql(dialect="duckdb", normalize_functions=False)
            item.replace(exp.alias_(item.copy(), name, quoted=True))


def _explicit_true(select: exp.Select) -> None:
    """A bare LM call used as a condition means ``= TRUE`` (BlendSQL semantics)."""
    where = select.args.get("where")
    if where is None:
        return
    for conj in conjuncts(where.this):
        if is_lm_call(conj):
            conj.replace(exp.EQ(this=conj.copy(), expression=exp.true()))


def _source_nodes(select: exp.Select, binder: _Binder) -> L.PlanNode:
    from_ = select.args.get("from_")
    if from_ is None:
        return L.DuckDBPlan(sql="(no FROM)")
    node = _relation_node(from_.this)
    for join in select.args.get("joins") or []:
        right = _relation_node(join.this)
        on = join.args.get("on")
        lm_join = (
            [c for c in conjuncts(on) if is_lm_call(c) and str(c.this).upper() == "LLMJOIN"]
            if on is not None
            else []
        )
        if on is not None and not lm_join and _calls_in(on):
            raise BindError(
                "LM functions in JOIN ... ON must be LLMJoin(left.col, right.col); "
                "move other LM predicates to WHERE"
            )
        if lm_join:
            kind = (join.args.get("kind") or "").upper()
            if kind and kind != "INNER" or join.args.get("side"):
                raise BindError("LLMJoin supports inner joins only")
            node = L.LMJoin(children=[node, right], call=binder.bind(lm_join[0]), join=join)
        else:
            kind = (
                " ".join(
                    str(join.args.get(k)).upper() for k in ("side", "kind") if join.args.get(k)
                )
                or "INNER"
            )
            cond = on.sql(dialect="duckdb") if on is not None else ""
            node = L.Join(children=[node, right], kind=kind, condition=cond)
    return node


def _relation_node(rel: exp.Expression) -> L.PlanNode:
    if isinstance(rel, exp.Table) and not rel.args.get("joins"):
        return L.Scan(table=rel.sql(dialect="duckdb").split(" AS ")[0], alias=rel.alias_or_name)
    return L.DuckDBPlan(sql=rel.sql(dialect="duckdb"))


def _has_aggregate(select: exp.Select) -> bool:
    """True when the SELECT list aggregates (window functions do not count)."""
    return any(
        _owner_select(agg) is select and agg.find_ancestor(exp.Window) is None
        for e in select.expressions
        for agg in e.find_all(exp.AggFunc)
    )


def _scope_facts(select: exp.Select) -> ScopeFacts:
    limit = select.args.get("limit")
    count = _int_literal(limit.expression) if limit is not None else None
    offset = select.args.get("offset")
    skip = _int_literal(offset.expression) if offset is not None else 0
    blockers = (
        bool(select.args.get("group"))
        or _has_aggregate(select)
        or bool(select.args.get("distinct"))
        or any(_owner_select(w) is select for w in select.find_all(exp.Window))
        or select.args.get("qualify") is not None
    )
    return ScopeFacts(
        limit=count + skip if count is not None and skip is not None else None,
        has_limit=limit is not None,
        ordered=select.args.get("order") is not None,
        blockers=blockers,
        top_k_ok=_top_k_applies(select),
    )


def _naive_steps(select: exp.Select, binder: _Binder) -> list[L.PlanNode]:
    """The scope as written: every LM call on every FROM row, then the WHERE, then the rest.

    This is the naive baseline; the rules in planner/rules rewrite it.
    """
    steps: list[L.PlanNode] = [_source_nodes(select, binder)]
    where = select.args.get("where")
    where_parts = conjuncts(where.this) if where is not None else []
    planned: list[LMCall] = []
    for pred in where_parts:
        for n in _calls_in(pred):
            call = binder.bind(n)
            if call.function == "LLMMap" and call not in planned:
                planned.append(call)
                steps.append(L.LMMap(call=call, predicate=pred))
    for n in _calls_in(select):
        if _owner_select(n) is not select or _inside_join_on(n) or _inside(n, where):
            continue
        call = binder.bind(n)
        if call.function == "LLMMap" and call not in planned:
            planned.append(call)
            steps.append(L.LMMap(call=call))
    if where_parts:
        steps.append(L.Filter(predicates=where_parts, role="where"))
    if bool(select.args.get("group")) or _has_aggregate(select):
        group = select.args.get("group") or exp.Group()
        steps.append(L.Aggregate(group_by=[g.sql(dialect="duckdb") for g in group.expressions]))
        having = select.args.get("having")
        if having is not None:
            steps.append(L.Filter(predicates=[having.this], role="having"))
    columns = [e.sql(dialect="duckdb", normalize_functions=False) for e in select.expressions]
    steps.append(L.Project(columns=columns, distinct=bool(select.args.get("distinct"))))
    order = select.args.get("order")
    if order is not None:
        steps.append(L.Sort(keys=[o.sql(dialect="duckdb") for o in order.expressions]))
    limit = select.args.get("limit")
    if limit is not None:
        offset = select.args.get("offset")
        steps.append(
            L.Limit(
                count=limit.expression.sql(),
                offset=offset.expression.sql() if offset is not None else "",
            )
        )
    return steps


def _inside(node: exp.Expression, clause: exp.Expression | None) -> bool:
    return clause is not None and any(n is node for n in clause.walk())


def _plan_scope(
    select: exp.Select, binder: _Binder, opts: PlanOptions, fired: list[str], facts: ScopeFacts
) -> L.PlanNode:
    steps = _naive_steps(select, binder)
    for rule in RULES:
        if not getattr(opts, rule.NAME):
            continue
        rewritten = rule.apply(steps, facts)
        if rewritten is not None:
            steps = rewritten
            if rule.NAME not in fired:
                fired.append(rule.NAME)
    return link(steps)


def _rank_limit(
    select: exp.Select, binder: _Binder, opts: PlanOptions, facts: ScopeFacts
) -> L.RankLimit | None:
    """Precision-first LIMIT, where the query has the shape it is defined for: LIMIT k,
    no ORDER BY / aggregate / DISTINCT, and exactly one LM call in the WHERE, a closed
    set (bool or options) whose answer has a probability to rank by."""
    if not opts.precision_first or facts.limit is None or facts.ordered or facts.blockers:
        return None
    where = select.args.get("where")
    parts = conjuncts(where.this) if where is not None else []
    lm_conjuncts = [c for c in parts if _calls_in(c)]
    if len(lm_conjuncts) != 1:
        return None
    calls = _calls_in(lm_conjuncts[0])
    if len(calls) != 1 or any(_calls_in(j) for j in select.args.get("joins") or []):
        return None
    call = binder.bound(calls[0])
    out = call.output if call is not None else None
    if call is None or call.function != "LLMMap" or out is None or out.labels() is None:
        return None
    if getattr(out, "expected", False):
        return None  # a number (expected value), not a label with a probability
    rest = [c.copy() for c in parts if not _calls_in(c)]
    return L.RankLimit(call, rest, opts.precision_first)


def _note_rank(root: L.PlanNode, rank: L.RankLimit, k: int | None) -> None:
    for node in root.walk():
        if getattr(node, "call", None) is rank.call:
            node.notes.append(
                f"precision-first: LIMIT {k} takes the {k} rows the model is surest of "
                f"when at most {rank.max_rows} rows are candidates (models that score labels)"
            )
            return


def _top_k_applies(select: exp.Select) -> bool:
    """Whether the LIMITed rows can be fixed before the SELECT list's LM calls run.

    Needs column references only (no star, no subquery) in the SELECT list, and an
    ORDER BY that does not depend on an LM call.
    """
    for item in select.expressions:
        if not isinstance(item, (exp.Column, exp.Alias)):
            return False  # its output name would change when it reads the fixed rows
        if item.find(exp.Star, exp.Subquery, exp.Select):
            return False
    order = select.args.get("order")
    if order is not None:
        aliases = {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
        for key in order.expressions:
            if _calls_in(key):
                return False
            for col in key.find_all(exp.Column):
                if not col.table and col.name in aliases:
                    target = next(
                        e
                        for e in select.expressions
                        if isinstance(e, exp.Alias) and e.alias == col.name
                    )
                    if _calls_in(target):
                        return False
            if isinstance(key.this, exp.Literal):
                return False  # ORDER BY position
    return True


def _inside_join_on(node: exp.Expression) -> bool:
    join = node.find_ancestor(exp.Join)
    return (
        join is not None
        and join.args.get("on") is not None
        and any(n is node for n in join.args["on"].walk())
    )


def _int_literal(node: exp.Expression | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.this)
    return None


def _scope_name(scope: Scope, index: int) -> str:
    if scope.is_cte:
        parent = scope.expression.parent
        return f"CTE {parent.alias}" if isinstance(parent, exp.CTE) else "CTE"
    if scope.is_derived_table:
        return f"derived table {scope.expression.parent.alias or index}"
    if scope.is_subquery:
        return f"subquery {index}"
    return "query"


def _query_part(ast: exp.Expression) -> exp.Expression:
    if isinstance(ast, (exp.Select, exp.SetOperation, exp.Subquery)):
        return ast
    if isinstance(ast, (exp.Create, exp.Insert)) and isinstance(
        ast.expression, (exp.Select, exp.SetOperation, exp.Subquery)
    ):
        return ast.expression
    raise BindError(
        f"LM functions are supported in SELECT queries, CREATE TABLE ... AS SELECT and "
        f"INSERT ... SELECT, not in {ast.key.upper()} statements"
    )


def build_plan(ast: exp.Expression, sql: str, catalog: Catalog, opts: PlanOptions) -> L.QueryPlan:
    """Plan one parsed statement. Mutates ``ast`` (bare LM conditions become ``= TRUE``)."""
    calls = _calls_in(ast)
    if not calls:
        return L.QueryPlan(statement=None, sql=sql, options=opts)
    for call in calls:
        for arg in call.expressions:
            inner = _calls_in(arg)
            if inner:
                raise BindError(
                    f"nested LM calls are not supported: {inner[0].sql()} inside {call.this}(...)"
                )
    query = _query_part(ast)
    scopes = traverse_scope(query)
    selects = [s for s in scopes if isinstance(s.expression, exp.Select)]
    owners = {id(_owner_select(c)) for c in calls}
    if None in {_owner_select(c) for c in calls}:
        raise BindError("LM functions must appear inside a SELECT")
    binder = _Binder(catalog, scopes)
    plan = L.QueryPlan(statement=ast, sql=sql, options=opts)
    for scope in selects:
        select = scope.expression
        if id(select) not in owners:
            continue
        _explicit_true(select)
        _name_lm_items(select)
        _substitute_lm_aliases(select, catalog, scope)
    # Bind LMQA constants first: they do not depend on rows.
    for node in _calls_in(ast):
        if str(node.this).upper() == "LLMQA":
            call = binder.bind(node)
            if not any(c.call is call for c in plan.constants):
                plan.constants.append(L.LMQA(call=call))
    for i, scope in enumerate(selects):
        select = scope.expression
        if id(select) not in owners:
            continue
        if any(
            str(n.this).upper() != "LLMQA" for n in _calls_in(select) if _owner_select(n) is select
        ):
            facts = _scope_facts(select)
            root = _plan_scope(select, binder, opts, plan.fired, facts)
            rank = _rank_limit(select, binder, opts, facts)
            if rank is not None:
                _note_rank(root, rank, facts.limit)
            plan.scopes.append(L.ScopePlan(_scope_name(scope, i), select, root, rank))
    plan.calls = list(binder.calls.values())
    return plan
