"""Ask an LM operator's rows in its prompt layout's order, so that consecutive prompts
share long prefixes the KV cache serves (seed 003). Changes only the order of LM calls:
answers and the query's result order stay as they are."""

from __future__ import annotations

from .. import logical as L
from .pipeline import Steps

NAME = "prefix_reorder"


def apply(steps: Steps, facts) -> Steps | None:
    ops = [s for s in steps if isinstance(s, L.LMOperator) and len(s.call.fields) > 1]
    for op in ops:
        op.reorder_rows = True
    return steps if ops else None
