"""AST -> QueryPlan: find LM calls, bind and type them, and lay out each scope's operators.

The layout encodes the optimisations that are on (``PlanOptions``):

* pushdown: relational WHERE conjuncts sit below the LM operators, and each LM filter
  below the next (cascade), so the LM only sees rows that can still reach the output;
  off: every LM call runs on every row of the FROM, and one Filter on top applies all.
* early_exit: a LIMIT k with no ORDER BY / aggregate / DISTINCT / window above the last
  LM filter makes that filter stop once k rows pass.
"""

from __future__ import annotations

from typing import Protocol

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from semql.dialect import is_lm_call
from semql.errors import BindError, TypeInferenceError
from semql.grammar.inference import ColumnFacts, InferenceConflict, infer_type
from semql.grammar.types import MAX_OPTIONS, StrType

from . import logical as L
from .calls import CANONICAL_NAMES, Field, LMCall, field_name, literal_value, split_arguments
from .options import PlanOptions


class Catalog(Protocol):
    """What the planner may ask the database (implemented over DuckDB by the connection)."""

    def columns(self, table: str) -> dict[str, str] | None:
        """Lower-case column name -> SQL type, or None for an unknown table."""

    def distinct_values(self, table: str, column: str, limit: int) -> tuple:
        """Up to ``limit`` distinct non-null values of a column, in a stable order."""

    def query_column(self, sql: str) -> list:
        """The first column of an LM-free query."""


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return _conjuncts(node.this)
    return [node]


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
                rows = value if value and isinstance(value[0], tuple) else (value,)
                if not all(isinstance(r, tuple) and len(r) >= 2 for r in rows):
                    raise BindError(
                        f"{fn}: examples= must be tuples (field values..., answer), "
                        f"got {node.sql()}"
                    )
                out[key] = list(rows)
            elif key == "context":
                out[key] = node
            else:
                value = literal_value(node, fn, key)
                if not isinstance(value, str):
                    raise BindError(f"{fn}: {key}= must be a string, got {node.sql()}")
                out[key] = value
        return out

    def bind(self, node: exp.Anonymous) -> LMCall:
        select = _owner_select(node)
        key = node.sql(dialect="duckdb", normalize_functions=False)
        slot = (id(select), key)
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
        if join is None or not any(n is node for n in _conjuncts(join.args.get("on"))):
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
            inferred = infer_type(node, call.kwargs, self.column_facts, call.label)
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
    for conj in _conjuncts(where.this):
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
            [c for c in _conjuncts(on) if is_lm_call(c) and str(c.this).upper() == "LLMJOIN"]
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


def _plan_scope(select: exp.Select, binder: _Binder, opts: PlanOptions) -> L.PlanNode:
    node = _source_nodes(select, binder)
    where = select.args.get("where")
    conjuncts = _conjuncts(where.this) if where is not None else []
    relational = [c for c in conjuncts if not _calls_in(c)]
    lm_preds = [c for c in conjuncts if _calls_in(c)]
    in_where = {id(n) for c in lm_preds for n in _calls_in(c)}

    planned: list[LMCall] = []

    def maps_for(nodes) -> list[LMCall]:
        """The LLMMap calls among ``nodes`` that no operator below computes yet."""
        out: list[LMCall] = []
        for n in nodes:
            call = binder.bind(n)
            if call.function == "LLMMap" and call not in out and call not in planned:
                out.append(call)
        planned.extend(out)
        return out

    if opts.pushdown:
        if relational:
            node = L.Filter(
                children=[node],
                predicates=relational,
                notes=["pushdown: relational filter before LM work"],
            )
        for pred in lm_preds:
            calls = maps_for(_calls_in(pred))
            for call in calls[:-1]:
                node = L.LMMap(children=[node], call=call)
            if calls:
                node = L.LMFilter(children=[node], call=calls[-1], predicate=pred)
            else:
                node = L.Filter(children=[node], predicates=[pred])
    else:
        # Naive: every LM call of the scope runs on every row of the FROM, then one
        # Filter applies all predicates.
        others = [
            n
            for n in _calls_in(select)
            if id(n) not in in_where and _owner_select(n) is select and not _inside_join_on(n)
        ]
        for nodes in [_calls_in(pred) for pred in lm_preds] + [others]:
            for call in maps_for(nodes):
                node = L.LMMap(children=[node], call=call)
        if conjuncts:
            node = L.Filter(children=[node], predicates=conjuncts)

    has_agg = bool(select.args.get("group")) or _has_aggregate(select)
    order = select.args.get("order")
    limit = select.args.get("limit")
    # Rows pass through unchanged to LIMIT only without these between them.
    blockers = (
        has_agg
        or select.args.get("distinct")
        or any(_owner_select(w) is select for w in select.find_all(exp.Window))
        or select.args.get("qualify") is not None
    )
    if (
        opts.early_exit
        and limit is not None
        and not blockers
        and order is None
        and isinstance(node, L.LMFilter)
    ):
        count = _int_literal(limit.expression)
        offset = select.args.get("offset")
        skip = _int_literal(offset.expression) if offset is not None else 0
        if count is not None and skip is not None:
            node.early_exit = count + skip
            node.notes.append(f"early exit: stop once {count + skip} rows pass")

    rest = [n for n in _calls_in(select) if id(n) not in in_where and _owner_select(n) is select]
    select_maps = maps_for([n for n in rest if not _inside_join_on(n)])
    limited_first = (
        opts.pushdown
        and select_maps
        and limit is not None
        and not blockers
        and _top_k_applies(select)
    )
    if limited_first:
        node = _sort_limit(node, select, materialize=True)
        node.notes.append("LM calls in SELECT run only for the rows that survive LIMIT")
    for call in select_maps:
        node = L.LMMap(children=[node], call=call)
    if has_agg:
        group = select.args.get("group") or exp.Group()
        keys = [g.sql(dialect="duckdb") for g in group.expressions]
        node = L.Aggregate(children=[node], group_by=keys)
        having = select.args.get("having")
        if having is not None:
            node = L.Filter(children=[node], predicates=[having.this])
    columns = [e.sql(dialect="duckdb", normalize_functions=False) for e in select.expressions]
    node = L.Project(children=[node], columns=columns, distinct=bool(select.args.get("distinct")))
    return node if limited_first else _sort_limit(node, select, materialize=False)


def _sort_limit(node: L.PlanNode, select: exp.Select, materialize: bool) -> L.PlanNode:
    order = select.args.get("order")
    if order is not None:
        node = L.Sort(children=[node], keys=[o.sql(dialect="duckdb") for o in order.expressions])
    limit = select.args.get("limit")
    if limit is not None:
        offset = select.args.get("offset")
        node = L.Limit(
            children=[node],
            count=limit.expression.sql(),
            offset=offset.expression.sql() if offset is not None else "",
            materialize=materialize,
        )
    return node


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
            root = _plan_scope(select, binder, opts)
            plan.scopes.append(L.ScopePlan(_scope_name(scope, i), select, root))
    plan.calls = list(binder.calls.values())
    return plan
