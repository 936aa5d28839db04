"""SQL for rows an operator is tried or calibrated on, not answered for the query.

The calibration sample: the rows a ``batch`` or ``table`` calibration prior is the mean
of (executors/lm/priors.py). A plan decides which rows reach an LM operator: pushdown
sends it only the rows of the WHERE's other conjuncts, naive execution every FROM row, an
early exit stops part way. A prior drawn from those rows would make a row's answer
depend on the plan. So the sample is drawn from one set every plan agrees on: for
``batch`` the scope's FROM under the WHERE's relational conjuncts
(``ScopePlan.population``); for ``table`` the FROM under only those conjuncts that relate
columns to columns (an implicit join's condition), so that rows a filter picked out (one
movie's reviews) are judged against the table they came from. In both, the distinct
argument tuples ordered by their hash (a fixed, seeded order that no other row changes)
and the first ``size`` kept. Rows whose arguments are all NULL are left out.

The group sample: predicate_order's first rows of a group of LM filters, each predicate
evaluated over them with its calls answered into views of their own.
"""

from __future__ import annotations

from sqlglot import exp

from ..calls import split_arguments
from ..rules.pipeline import lm_calls_in
from ..rules.predicate_order import SAMPLE_ROWS
from ..scope_sql import argument_columns, argument_name, same_arguments, scope_query
from .column_slots import ColumnSlots

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)


def relates_rows(conjunct: exp.Expression) -> bool:
    """Whether a WHERE conjunct compares columns with columns (``a.id = b.id``) rather than
    picking rows by a constant, a list or a subquery (``id = 'taken_3'``)."""
    if not isinstance(conjunct, COMPARISONS) or conjunct.find(exp.Subquery, exp.Select):
        return False
    return all(side.find(exp.Column) for side in (conjunct.this, conjunct.expression))


def calibration_sql(
    select: exp.Select,
    fields: list[exp.Expression],
    population: list,
    size: int,
    method: str = "batch",
) -> str:
    """The distinct argument tuples a ``batch`` or ``table`` prior is drawn from (see
    above; precision-first samples its candidates the way ``batch`` does);
    ``population`` is the scope's relational conjuncts."""
    if method == "table":
        population = [c for c in population if relates_rows(c)]
    names = [f"__c{i}" for i in range(len(fields))]
    columns = [exp.alias_(f.copy(), n) for f, n in zip(fields, names, strict=True)]
    source = scope_query(select, columns, population)
    listed = ", ".join(names)
    some = " OR ".join(f"{n} IS NOT NULL" for n in names)
    return (
        f"SELECT DISTINCT {listed} FROM ({source}) WHERE {some} "
        f"ORDER BY hash({listed}), {listed} LIMIT {int(size)}"
    )


class GroupSampleSQL:
    """The sample rows of a reorder group as the view ``view`` and the SQL that tries each
    predicate on them.

    The first rows in input order: the filters' first batches are the same rows, so
    under an early exit the sampled answers are the ones needed anyway.
    """

    def __init__(self, view: str, select: exp.Select, below: list, preds: list):
        self.view = view
        self.slots = ColumnSlots(list(preds))
        self.sql = f"{scope_query(select, self.slots.projection(), below)} LIMIT {SAMPLE_ROWS}"
        self.views = 0

    def predicate(self, pred: exp.Expression) -> tuple[list[tuple], str]:
        """Each LM call of ``pred`` as (call node, distinct-arguments SQL, answers view,
        its argument columns), and the SQL counting the sample rows that pass, then all
        sample rows."""
        originals = lm_calls_in(pred)
        copy = pred.copy()
        copies = lm_calls_in(copy)
        self.slots.redirect(copy, self.view)
        found = []
        for original, node in zip(originals, copies, strict=True):
            args = split_arguments(node)[0][1:]
            select = ", ".join(c.sql(dialect="duckdb") for c in argument_columns(args))
            self.views += 1
            answers = f"{self.view}_a{self.views}"
            columns = tuple(argument_name(i) for i in range(len(args)))
            found.append((original, f"SELECT DISTINCT {select} FROM {self.view}", answers, columns))
            conds = same_arguments(args)
            node.replace(exp.maybe_parse(f"(SELECT any_value(__out) FROM {answers} WHERE {conds})"))
        count = (
            f"SELECT count(*) FILTER (WHERE {copy.sql(dialect='duckdb')}), count(*) "
            f"FROM {self.view}"
        )
        return found, count
