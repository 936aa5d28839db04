"""An LM operator's input holds only the values its call reads, not whole rows."""

from __future__ import annotations

from sqlglot import exp

from .. import logical as L
from .pipeline import Steps

NAME = "projection_pruning"


def apply(steps: Steps, facts) -> Steps | None:
    ops = [s for s in steps if isinstance(s, L.LMOperator)]
    for op in ops:
        op.prune = True
        reads = ", ".join(f.expr.sql(dialect="duckdb") for f in op.call.fields)
        op.notes.append(f"projection: materialises only {reads}")
    return steps if ops else None


def input_columns(args: list[exp.Expression], on: bool) -> list[exp.Expression]:
    """What an LM operator's input materialises: only the call's arguments, or (off:
    the naive baseline's cost) whole rows with them."""
    return args if on else [exp.Star(), *args]
