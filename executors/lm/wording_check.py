"""How much a call's answers move under a trivial rewording of its own prompt.

A user writes a question once and cannot check it against labels; a small model's
answers can swing when nothing of meaning changed (bench/wording.py measures how much).
With ``check_wording=True`` each closed-set operator asks its calibration sample
(planner/physical/samples.py) a second time, reworded in a way that keeps
the meaning:

- two or more examples: the same examples in reverse order;
- else options: the same options listed in reverse order;
- else: the question with its question mark dropped (or added).

Each wording is decided with its own prior (the call's calibration method), and the
operator reports how many sampled rows change their answer. Cost: one more call per
sampled row (calibration calls), at most ``calibration_rows``; the answers to the query's
rows are the original wording's, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from semql.grammar.types import OptionsType, OutputType

from . import closed_set
from .priors import Sample


def reworded(
    question: str, out_type: OutputType, examples: Sequence[tuple]
) -> tuple[str, OutputType, list[tuple], str]:
    """The trivially reworded call: (question, type, examples, what changed)."""
    if len(examples) >= 2:
        return question, out_type, list(reversed(examples)), "the examples are reversed"
    if isinstance(out_type, OptionsType) and len(out_type.values) >= 2:
        turned = replace(out_type, values=tuple(reversed(out_type.values)))
        return question, turned, list(examples), "the options are listed in reverse"
    stripped = question.rstrip()
    if stripped.endswith("?"):
        return stripped[:-1], out_type, list(examples), "the question mark is dropped"
    return stripped + "?", out_type, list(examples), "a question mark is added"


def check(lm, question, out_type, names, examples, method, sample: Sample, prior, stats) -> None:
    """Ask the sample in both wordings; put what moved in ``stats.wording_check``."""
    rows = sample()
    if not rows:
        return
    q2, type2, examples2, what = reworded(question, out_type, examples)
    prior2 = lm.priors.prior(q2, type2, names, examples2, method, stats, sample, own=False)
    first = _labels(lm, question, out_type, names, examples, rows, prior, stats, True)
    second = _labels(lm, q2, type2, names, examples2, rows, prior2, stats, False)
    changed = sum(a != b for a, b in zip(first, second, strict=True))
    stats.wording_check = f"{changed} of {len(rows)} sampled rows change their answer when {what}"
    stats.wording_changed = changed / len(rows)


def _labels(lm, question, out_type, names, examples, rows, prior, stats, own) -> list[str]:
    """Each row's calibrated label; ``own``: the call's own wording (its rows' answers)."""
    prompts = [lm.window.row_prompt(question, out_type, names, r, examples) for r in rows]
    labels = out_type.labels()
    return [
        labels[int(np.argmax(prior.calibrate(closed_set.probabilities(s))))]
        for s in lm.priors.scores(prompts, out_type, stats, rows=own)
    ]
