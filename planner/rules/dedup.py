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
