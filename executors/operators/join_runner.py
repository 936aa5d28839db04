"""LLMJoin: each left value mapped by the LM to one of its closest right values, or left
unmatched; the mapping becomes a temp table and the call a lookup into it."""

from __future__ import annotations

import pyarrow as pa

from semql.grammar.types import OptionsType
from semql.planner.physical import JoinStage

from ..lm.lm_executor import LMExecutor
from .database import Database
from .join_candidates import Candidates
from .run_state import QueryRun


def run_join(stage: JoinStage, run: QueryRun, db: Database, lm: LMExecutor) -> None:
    """Map the stage's left values to right values into its table (later stages and the
    final statement read the mapping there)."""
    op = run.op_stats(stage.key, stage.title)
    _, lrows = db.fetch(stage.left_sql)
    _, rrows = db.fetch(stage.right_sql)
    left_values = [r[0] for r in lrows if r[0] is not None]
    right_values = tuple(r[0] for r in rrows if r[0] is not None)
    mapping: list[tuple] = []
    unresolved = []
    lowered = {str(v).lower(): v for v in right_values}
    for value in left_values:
        if value in right_values:
            mapping.append((value, value))
        elif str(value).lower() in lowered:
            mapping.append((value, lowered[str(value).lower()]))
        else:
            unresolved.append(value)
    if unresolved and right_values:
        pick = Candidates(right_values)
        for value in unresolved:  # each value its own few candidates, or none of them
            out_type = OptionsType((*pick.of(value), pick.none))
            (answer,) = lm.answer(
                stage.question,
                out_type,
                ["value"],
                [(value,)],
                op,
                list(stage.examples),
                calibration="off",  # a content-free prior of names means nothing
            )
            if answer != pick.none:
                mapping.append((value, answer))
    op.rows_out = len(mapping)  # left values matched (the rest stay unmatched)
    data = pa.table(
        {"__l": pa.array([m[0] for m in mapping]), "__r": pa.array([m[1] for m in mapping])}
    )
    source = f"{stage.table}_src"
    db.load(f"CREATE TEMP TABLE {stage.table} AS SELECT * FROM {source}", source, data)
    op.rows_in = len(left_values)
