"""The label prior of one LM operator, computed once: what calibration divides by.

Two label-free estimates (executors/lm/closed_set.py applies them):

- ``content_free``: the mean label distribution of the call's prompt with every field
  set to "N/A", "" and "[MASK]" (Zhao et al. 2021). Three calls, whatever the data. It
  reads the model's bias from inputs that look like none of the real ones, so how well it
  corrects depends on the wording: bench/wording.py measures that.
- ``batch``: the mean label distribution of a fixed, seeded sample of the operator's own
  rows (batch calibration, Zhou et al. 2023). The sample is drawn by the engine from the
  rows that pass the scope's relational WHERE conjuncts (the physical plan's SQL,
  planner/physical/samples.py), never from what a rewrite lets through, so naive and optimized
  plans divide by the same prior and give the same answers. Its prompts are the rows'
  own, so their answers go to the result cache and a row asked later costs nothing.
- ``table``: the same, of a sample of the table the operator's rows were filtered from
  (the FROM under only the WHERE's conjuncts that join, planner/physical/samples.py).
  batch divides the rows' own mean away, so it reads any population as balanced; a
  movie most critics panned then gets as many "positive" answers as any other. A prior
  from the whole table keeps what sets the filtered rows apart from it. Sampled rows the
  operator does not answer stay calibration calls (:meth:`Priors.scores`).

A prior the model cannot give (a prompt decoded rather than scored, a label at the floor)
means no calibration, with the reason in the operator's stats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from semql.grammar.types import OutputType

from . import closed_set

Sample = Callable[[], list[tuple]]  # the operator's calibration rows, fetched on first use
SAMPLED = ("batch", "table")  # methods whose prior is the mean of sampled rows


class Priors:
    """One executor's priors, keyed by the operator's prompt template (and sample)."""

    def __init__(self, executor):
        self.lm = executor  # LMExecutor: prompts, result cache, model calls
        self._known: dict[tuple, tuple[closed_set.Prior, str | None]] = {}
        self._sampled: set[str] = set()  # rows asked for a prior that no row has read yet

    def prior(
        self,
        question: str,
        out_type: OutputType,
        names: Sequence[str],
        examples: Sequence[tuple],
        method: str,
        stats,
        sample: Sample | None = None,
        own: bool = True,
    ) -> closed_set.Prior:
        """``own``: the call's own wording, whose sampled prompts are its rows' (their calls
        count as LM calls); False for another wording of it (calibration calls)."""
        if method == "off" or not names:  # no field: the content-free prompt is the prompt
            return closed_set.Prior("off", None)
        rows: list[tuple] | None = None
        sampled = method in SAMPLED
        if sampled:
            rows = sample() if sample is not None else []
            if not rows:  # no rows to sample (a constant call, retrieval, no WHERE rows)
                method, sampled = "content_free", False
        template = (question, out_type.spec(), tuple(names), repr(list(examples)))
        key = (*template, method, _digest(rows) if sampled else "")
        if key not in self._known:
            if sampled:
                prompts = [
                    self.lm.window.row_prompt(question, out_type, names, r, examples) for r in rows
                ]
                scores = self.scores(prompts, out_type, stats, rows=own)
                found = closed_set.sample_prior(method, scores, len(rows))
            else:
                prompts = [
                    self.lm.prompts.build(question, out_type, names, [v] * len(names), examples)
                    for v in closed_set.CONTENT_FREE
                ]
                scores = self.scores(prompts, out_type, stats)
                found = closed_set.content_free_prior(method, scores)
            self._known[key] = found
        prior, unusable = self._known[key]
        if unusable:
            stats.prior_unusable = unusable
        return prior

    def scores(
        self, prompts: list[str], out_type: OutputType, stats, rows: bool = False
    ) -> list[list[float]]:
        """The prompts' label log-probabilities, from the result cache where it has them.
        Asked of the model, each is a calibration call; a row's prompt (``rows``) becomes
        an LM call when the operator reads its answer (:meth:`claim`), so a sampled row
        the operator never answers (outside its WHERE, past a LIMIT) stays a calibration
        call and a row it answers is one LM call whichever asked it first."""
        lm = self.lm
        keys = [lm.scored_key(out_type, p) for p in prompts]
        cached = lm.cache.get_many(keys)
        texts = {k: lm.remembered.get(k) or cached.get(k) for k in keys}
        missing = [i for i, k in enumerate(keys) if texts[k] is None and keys.index(k) == i]
        if missing:  # asked together: the in-process model scores them in shared decodes
            asked = lm.ask_scored_many([prompts[i] for i in missing], out_type, stats, True)
            fresh = [(keys[i], text) for i, text in zip(missing, asked, strict=True)]
            if rows:
                self._sampled.update(keys[i] for i in missing)
            lm.cache.put_many(fresh)
            texts.update(fresh)
        # kept for the operator's own rows, also where the result cache is off
        lm.remembered.update(texts)
        return [closed_set.decode(texts[k]) for k in keys]

    def claim(self, key: str, stats) -> bool:
        """Whether a row's answer read from memory was asked for a sampled prior: it then
        counts as the row's LM call instead of a calibration call (see :meth:`scores`)."""
        if key not in self._sampled or stats.calibration_calls == 0:
            return False
        self._sampled.discard(key)
        stats.calibration_calls -= 1
        stats.lm_calls += 1
        return True


def _digest(rows: list[tuple] | None) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
