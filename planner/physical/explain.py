"""EXPLAIN's view of the physical plan: each scope's stages, one line each.

Before a run the stages are compiled under no choices (precision-first not applied, a
reorder group not yet sampled, temp tables under a placeholder prefix); after EXPLAIN
ANALYZE they are the stages as they ran.
"""

from __future__ import annotations

from . import stages as S

WIDTH = 160


def _short(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def _lm(stage: S.LMStage) -> list[str]:
    parts = [f"LM {stage.title}: {len(stage.task.names)} field(s) -> {stage.task.output}"]
    parts.append(f"rows {_short(stage.source_sql)}")
    parts.append(
        ("one call per distinct argument tuple" if stage.dedup else "one call per row")
        + ("; whole rows materialised first (no projection pruning)" if stage.setup else "")
    )
    if stage.exit is not None:
        parts.append(
            f"early exit once {stage.exit.rows} rows pass, checked every {stage.exit.batch}"
        )
    if stage.rank is not None:
        parts.append(
            f"precision-first: a sample of at most {stage.rank.sample_rows} distinct "
            f"argument tuples answered first, ranked by confidence ({stage.rank.rank_by})"
        )
    if stage.proxy is not None:
        parts.append(f"proxy model may answer at {stage.proxy.target:g} agreement")
    return parts


def _line(stage: S.Stage) -> list[str]:
    if isinstance(stage, S.LMStage):
        return _lm(stage)
    if isinstance(stage, S.TopKStage):
        return [f"fix the LIMITed rows: {_short(stage.create_sql)}"]
    if isinstance(stage, S.JoinStage):
        return [f"{stage.title}: left {_short(stage.left_sql)}", f"right {_short(stage.right_sql)}"]
    return [
        f"sample the group's first rows, try its {len(stage.units)} predicates on them, "
        "then order the group (cheapest and most selective first)"
    ]


def render_stages(compiled) -> str:
    """The physical plan of a :class:`~.compiler.Compiled`, as EXPLAIN shows it."""
    lines = ["physical plan (the stages the engine runs, in order):"]
    for qa in compiled.qa:
        kinds = ", ".join(c.kind for c in qa.contexts) or "no context"
        lines.append(f"  {qa.call.label}: one answer over its context ({kinds})")
    if compiled.pending:
        lines.append("  ($llmqa_<i> below: an LLMQA answer, known once its stage ran)")
    for scope in compiled.scopes:
        lines.append(f"  {scope.name}:")
        if scope.rank_check is not None:
            lines.append(
                f"    check: precision-first ranks at most {scope.rank_check.sample_rows} "
                "candidate rows (where the model scores labels)"
            )
        for i, stage in enumerate(scope.stages, 1):
            first, *rest = _line(stage)
            lines.append(f"    {i}. {first}")
            lines += [f"       {part}" for part in rest]
    lines.append(f"  final: {_short(compiled.final_sql)}")
    return "\n".join(lines)
