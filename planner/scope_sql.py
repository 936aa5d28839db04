"""SQL for the rows an operator of one SELECT scope reads.

Shared by the engine (to materialise an LM operator's inputs) and the cost model (to
count them): both must see exactly the same rows.
"""

from __future__ import annotations

from sqlglot import exp

from semql.dialect import is_lm_call

from . import logical as L


def conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return conjuncts(node.this)
    return [node]


def ctes_before(select: exp.Expression) -> list[exp.CTE]:
    """CTEs visible to ``select``: every enclosing WITH's CTEs defined before its own."""
    found: list[exp.CTE] = []
    own_cte: exp.CTE | None = None
    node = select
    while node is not None:
        if isinstance(node, exp.CTE):
            own_cte = node
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            visible = []
            for cte in with_.expressions:
                if cte is own_cte:
                    break
                visible.append(cte)
            found = visible + found
        node = node.parent
    return found


def scope_query(
    select: exp.Select,
    columns: list[exp.Expression],
    predicates: list[exp.Expression],
    joins_upto: int | None = None,
) -> str:
    """SQL that reads ``columns`` from the scope's FROM under ``predicates``."""
    q = exp.Select(expressions=columns)
    from_ = select.args.get("from_")
    if from_ is not None:
        q.set("from_", from_.copy())
    joins = select.args.get("joins") or []
    if joins_upto is not None:
        joins = joins[:joins_upto]
    if joins:
        q.set("joins", [j.copy() for j in joins])
    if predicates:
        q.set("where", exp.Where(this=exp.and_(*[p.copy() for p in predicates])))
    ctes = ctes_before(select)
    if ctes:
        q.set("with_", exp.With(expressions=[c.copy() for c in ctes]))
    return q.sql(dialect="duckdb")


def predicates_below(node: L.PlanNode) -> list[exp.Expression]:
    """Predicates applied by the operators under ``node`` (its input rows)."""
    preds: list[exp.Expression] = []
    child = node.child
    while child is not None and not isinstance(child, (L.Scan, L.DuckDBPlan, L.Join, L.LMJoin)):
        if isinstance(child, L.Limit) and child.materialize:
            break  # the scope now reads the fixed rows, already filtered
        if isinstance(child, L.Filter):
            preds += child.predicates
        elif isinstance(child, L.LMFilter):
            preds.append(child.predicate)
            if child.done is not None:
                preds.append(child.done)
        child = child.child
    return preds


def row_columns(item: exp.Expression) -> list[exp.Column]:
    """Columns an expression reads per row: not LM keyword names or values (options=...)."""
    out = []
    for col in item.find_all(exp.Column):
        kw = col.find_ancestor(exp.EQ, exp.PropertyEQ, exp.Kwarg)
        if (
            kw is not None
            and is_lm_call(kw.parent)
            and isinstance(kw.this, (exp.Column, exp.Identifier))
        ):
            continue
        out.append(col)
    return out
