"""SQL for the rows an operator of one SELECT scope reads.

Shared by the engine (to materialise an LM operator's inputs) and the cost model (to
count them): both must see exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from . import logical as L
from .calls import is_lm_call


def argument_name(i: int) -> str:
    """The column of an LM call's i-th argument in the tables of argument tuples (an
    operator's input, its proxy source, a sample's answers)."""
    return f"__a{i}"


def argument_columns(exprs: list[exp.Expression]) -> list[exp.Expression]:
    """The call's argument expressions as the argument columns."""
    return [exp.alias_(e.copy(), argument_name(i)) for i, e in enumerate(exprs)]


def argument_list(n: int) -> str:
    return ", ".join(argument_name(i) for i in range(n))


def same_arguments(exprs: list[exp.Expression], table: str = "") -> str:
    """SQL: the argument columns (of ``table``) equal, NULL included, to ``exprs``."""
    prefix = f"{table}." if table else ""
    return " AND ".join(
        f"{prefix}{argument_name(i)} IS NOT DISTINCT FROM ({e.sql(dialect='duckdb')})"
        for i, e in enumerate(exprs)
    )


def conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return conjuncts(node.this)
    return [node]


def relational_conjuncts(select: exp.Select) -> list[exp.Expression]:
    """The WHERE's conjuncts without LM calls (copies: the plan's own, not the query's):
    the rows a batch calibration prior is drawn from and precision-first's candidates."""
    where = select.args.get("where")
    parts = conjuncts(where.this) if where is not None else []
    return [c.copy() for c in parts if not any(is_lm_call(n) for n in c.walk())]


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


def source_known(select: exp.Select) -> bool:
    """Whether the scope's rows can be read before execution: its FROM, its joins and
    the CTEs it sees hold no LM call (an LLMJoin's or an earlier scope's rows exist only
    once they ran)."""
    sources = [select.args.get("from_"), *(select.args.get("joins") or [])]
    sources += ctes_before(select)
    return not any(is_lm_call(n) for s in sources if s is not None for n in s.walk())


def count_query(select: exp.Select, predicates: list[exp.Expression]) -> str:
    """SQL counting the scope's rows under ``predicates`` (one column, ``n``)."""
    return scope_query(select, [exp.alias_(exp.Count(this=exp.Star()), "n")], predicates)


def chain_below(node: L.PlanNode) -> list[L.PlanNode]:
    """The operators under ``node`` top-down, following first children."""
    chain = []
    child = node.child
    while child is not None:
        chain.append(child)
        child = child.child
    return chain


def predicates_in(
    chain: list[L.PlanNode],
    also: Callable[[L.LMFilter], list[exp.Expression]] | None = None,
) -> list[exp.Expression]:
    """Predicates applied by ``chain``, operators listed top-down from the one just
    under the operator whose input they define, down to the scope's source. ``also``:
    conditions an execution adds after an LM filter's own (its early exit's "answer
    known")."""
    preds: list[exp.Expression] = []
    for step in chain:
        if isinstance(step, (L.Scan, L.DuckDBPlan, L.Join, L.LMJoin)):
            break
        if isinstance(step, L.Limit) and step.materialize:
            break  # the scope now reads the fixed rows, already filtered
        if isinstance(step, L.Filter):
            preds += step.predicates
        elif isinstance(step, L.LMFilter):
            preds.append(step.predicate)
            if also is not None:
                preds += also(step)
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
