"""One LM call per distinct input tuple; the answers are joined back to every row."""

from __future__ import annotations

from .. import logical as L
from .pipeline import Steps

NAME = "dedup"


def apply(steps: Steps, facts) -> Steps | None:
    ops = [s for s in steps if isinstance(s, L.LMOperator)]
    for op in ops:
        op.dedup = True
        fields = ", ".join(f.name for f in op.call.fields)
        op.notes.append(f"dedup: one LM call per distinct ({fields})")
    return steps if ops else None


def input_rows(source: str, names: str, on: bool) -> str:
    """The rows an LM operator asks, in input order (``source`` has the argument
    columns ``names`` and ``__ord``): one per distinct argument tuple, at its first
    position, when dedup is on; else every row."""
    if on:
        grouped = f"SELECT {names}, min(__ord) AS __ord FROM ({source}) GROUP BY ALL"
        return grouped + " ORDER BY __ord"
    return f"SELECT {names}, __ord FROM ({source}) ORDER BY __ord"


def calls(rows: float, distinct: float, on: bool) -> float:
    """LM calls for an input of ``rows`` rows holding ``distinct`` argument tuples."""
    return distinct if on else rows
