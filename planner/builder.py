"""AST -> QueryPlan: find LM calls, bind and type them, and lay out each scope's operators.

Each SELECT with LM calls is first laid out naively (every LM call on every FROM row,
then the WHERE, then grouping, projection, ORDER BY, LIMIT); the rewrite rules of
planner/rules then move and annotate operators, each under its own switch.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from semql.errors import BindError

from . import logical as L
from .binder import Binder, Catalog, calls_in, owner_select
from .calls import LMCall, is_lm_call
from .options import PlanOptions
from .rules import RULES, precision_first
from .rules.pipeline import ScopeFacts, link
from .scope_sql import conjuncts, relational_conjuncts


def _substitute_lm_aliases(select: exp.Select, catalog: Catalog, scope: Scope | None) -> None:
    """WHERE/HAVING references to a SELECT alias of an LM expression become the expression.

    DuckDB resolves such aliases itself, but the planner must see the LM call in the
    predicate to run it before the filter. Real columns win over aliases, as in DuckDB.
    """
    aliases = {
        e.alias: e.this for e in select.expressions if isinstance(e, exp.Alias) and calls_in(e.this)
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
        if not isinstance(item, exp.Alias) and calls_in(item):
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


def _source_nodes(select: exp.Select, binder: Binder) -> L.PlanNode:
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
        if on is not None and not lm_join and calls_in(on):
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
        owner_select(agg) is select and agg.find_ancestor(exp.Window) is None
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
        or any(owner_select(w) is select for w in select.find_all(exp.Window))
        or select.args.get("qualify") is not None
    )
    return ScopeFacts(
        limit=count + skip if count is not None and skip is not None else None,
        has_limit=limit is not None,
        ordered=select.args.get("order") is not None,
        blockers=blockers,
        top_k_ok=_top_k_applies(select),
    )


def _naive_steps(select: exp.Select, binder: Binder) -> list[L.PlanNode]:
    """The scope as written: every LM call on every FROM row, then the WHERE, then the rest.

    This is the naive baseline; the rules in planner/rules rewrite it.
    """
    steps: list[L.PlanNode] = [_source_nodes(select, binder)]
    where = select.args.get("where")
    where_parts = conjuncts(where.this) if where is not None else []
    planned: list[LMCall] = []
    for pred in where_parts:
        for n in calls_in(pred):
            if owner_select(n) is not select:  # a subquery's call: its own scope runs it
                continue
            call = binder.bind(n)
            if call.function == "LLMMap" and call not in planned:
                planned.append(call)
                steps.append(L.LMMap(call=call, predicate=pred))
    for n in calls_in(select):
        if owner_select(n) is not select or _inside_join_on(n) or _inside(n, where):
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
    select: exp.Select, binder: Binder, opts: PlanOptions, fired: list[str], facts: ScopeFacts
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


def _in_lm_call(node: exp.Expression) -> bool:
    parent = node.parent
    while parent is not None and not is_lm_call(parent):
        parent = parent.parent
    return parent is not None


def _top_k_applies(select: exp.Select) -> bool:
    """Whether the LIMITed rows can be fixed before the SELECT list's LM calls run.

    Needs column references only (no star, no subquery) in the SELECT list, and an
    ORDER BY that does not depend on an LM call.
    """
    for item in select.expressions:
        if not isinstance(item, (exp.Column, exp.Alias)):
            return False  # its output name would change when it reads the fixed rows
        for found in item.find_all(exp.Star, exp.Subquery, exp.Select):
            if not _in_lm_call(found):  # a retrieval context is gone once answered
                return False
    order = select.args.get("order")
    if order is not None:
        aliases = {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
        for key in order.expressions:
            if calls_in(key):
                return False
            for col in key.find_all(exp.Column):
                if not col.table and col.name in aliases:
                    target = next(
                        e
                        for e in select.expressions
                        if isinstance(e, exp.Alias) and e.alias == col.name
                    )
                    if calls_in(target):
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


def _refuse_correlated(selects: list, owners: set[int]) -> None:
    """An LM scope runs once over its own FROM, before the query around it: a subquery
    that reads a column of the outer query (correlated) has no rows of its own to run on.
    Named here, at the outer column, instead of DuckDB's "table not found" in SQL SemQL
    generated."""
    for scope in selects:
        if id(scope.expression) not in owners:
            continue
        outer = [c for c in scope.external_columns if c.table]
        if outer:
            err = BindError(
                f"an LM function in a subquery that reads the outer query's {outer[0].sql()} "
                "(a correlated subquery) is not supported; join the tables instead"
            )
            err.offset = outer[0].args["table"].meta.get("start")  # at the qualifier
            raise err


def build_plan(ast: exp.Expression, sql: str, catalog: Catalog, opts: PlanOptions) -> L.QueryPlan:
    """Plan one parsed statement. Mutates ``ast`` (bare LM conditions become ``= TRUE``)."""
    calls = calls_in(ast)
    if not calls:
        return L.QueryPlan(statement=None, sql=sql, options=opts)
    for call in calls:
        for arg in call.expressions:
            inner = calls_in(arg)
            if inner:
                raise BindError(
                    f"nested LM calls are not supported: {inner[0].sql()} inside {call.this}(...)"
                )
    query = _query_part(ast)
    scopes = traverse_scope(query)
    selects = [s for s in scopes if isinstance(s.expression, exp.Select)]
    owners = {id(owner_select(c)) for c in calls}
    if None in {owner_select(c) for c in calls}:
        raise BindError("LM functions must appear inside a SELECT")
    _refuse_correlated(selects, owners)
    binder = Binder(catalog, scopes)
    plan = L.QueryPlan(statement=ast, sql=sql, options=opts)
    for scope in selects:
        select = scope.expression
        if id(select) not in owners:
            continue
        _explicit_true(select)
        _name_lm_items(select)
        _substitute_lm_aliases(select, catalog, scope)
    # Bind LMQA constants first: they do not depend on rows.
    for node in calls_in(ast):
        if str(node.this).upper() == "LLMQA":
            call = binder.bind(node)
            if not any(c.call is call for c in plan.constants):
                plan.constants.append(L.LMQA(call=call))
    for i, scope in enumerate(selects):
        select = scope.expression
        if id(select) not in owners:
            continue
        if any(
            str(n.this).upper() != "LLMQA" for n in calls_in(select) if owner_select(n) is select
        ):
            facts = _scope_facts(select)
            root = _plan_scope(select, binder, opts, plan.fired, facts)
            rank = precision_first.rank_limit(select, binder, opts, facts)
            if rank is not None:
                precision_first.note(root, rank, facts.limit)
            population = relational_conjuncts(select)
            plan.scopes.append(L.ScopePlan(_scope_name(scope, i), select, root, rank, population))
    plan.calls = list(binder.calls.values())
    return plan
