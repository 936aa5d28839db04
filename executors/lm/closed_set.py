"""Closed-set answers (bool, options) decided from the probability of each whole label.

Greedy decoding keeps only the top token of each step and throws the rest of the
model's belief away; a tiny model's top label is often the same for every row (a label
it prefers whatever the input). Here the runtime scores every label whole
(LlamaRuntime.score), and the answer is the label with the highest *calibrated*
probability:

    p_cal(label | row) ∝ p(label | row) / prior(label)

where ``prior`` is the model's label distribution for the operator's prompt: for inputs
that carry no content (``content_free``, Zhao et al. 2021), or for a fixed, seeded sample
of the operator's rows (``batch``, Zhou et al. 2023) or of the table they were filtered
from (``table``); executors/lm/priors.py computes it
once per operator. Neither depends on which rows a plan lets through, so a row's answer
is the same under naive and optimized execution, dedup, early exit and the result cache.

Where the SQL wants a number from a numeric scale (``AVG(LLMMap(..., options=(1,2,3,4,5)))``,
ORDER BY, arithmetic) the answer is the expected value under the calibrated distribution
instead of one label (OptionsType.expected); a yes/no question there is answered with the
calibrated probability of yes (BoolType.expected), so SUM gives an expected count: the
wording benchmark found it moves far less with the wording than a count of decisions, and
leans toward half the rows where the model is unsure (docs/wording.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semql.grammar.types import BoolType, OptionsType, OutputType
from semql.planner.physical.task import DEFAULT_CALIBRATION

CONTENT_FREE = ("N/A", "", "[MASK]")
DEFAULT_METHOD = DEFAULT_CALIBRATION
# Larger sets (an LLMJoin over a column's values) are decoded greedily under the grammar:
# scoring every label whole would cost a forward pass per label token.
MAX_SCORED_LABELS = 32


def probabilities(logprobs: Sequence[float]) -> np.ndarray:
    """The labels' probabilities renormalised over the closed set."""
    z = np.asarray(logprobs, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def encode(logprobs: Sequence[float]) -> str:
    """How a scored answer is kept in the result cache (the raw log-probabilities)."""
    return json.dumps([round(float(x), 6) for x in logprobs])


def decode(text: str) -> list[float]:
    return [float(x) for x in json.loads(text)]


@dataclass(frozen=True)
class Prior:
    """The label distribution of content-free inputs for one LM operator."""

    method: str
    probs: tuple[float, ...] | None  # None: no calibration
    sampled: int = 0  # batch, table: how many sampled rows the prior is the mean of

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        if self.probs is None:
            return probs
        q = probs / np.maximum(np.asarray(self.probs), PRIOR_FLOOR)
        return q / q.sum()

    def describe(self, labels: Sequence[str]) -> str:
        if self.probs is None:
            return "calibration off (highest whole-label probability)"
        shown = ", ".join(f"{lab} {p:.2f}" for lab, p in zip(labels, self.probs, strict=True))
        source = f" over {self.sampled} sampled rows" if self.sampled else ""
        if self.sampled and self.method == "table":
            source += " of the table"
        return f"calibration {self.method}: prior {shown}{source}"


def answer_value(out_type: OutputType, probs: np.ndarray, prior: Prior):
    """The row's answer: the calibrated argmax label, the expected value of a scale, or
    the probability of yes (a yes/no question where the SQL wants a number)."""
    q = prior.calibrate(probs)
    if isinstance(out_type, OptionsType) and out_type.expected:
        return float(np.dot(q, np.asarray(out_type.values, dtype=np.float64)))
    if isinstance(out_type, BoolType) and out_type.expected:
        return float(q[0])  # labels are (yes, no)
    label = out_type.labels()[int(np.argmax(q))]
    return out_type.parse(" " + label)


def confidence(out_type: OutputType, probs: np.ndarray, prior: Prior) -> float | None:
    """The calibrated probability of the row's answer (None for an expected value or a
    probability, which is a number, not a label)."""
    if getattr(out_type, "expected", False):
        return None
    return float(np.max(prior.calibrate(probs)))


def unscored(logprobs: Sequence[float]) -> bool:
    """A greedy answer in score form: one label at log-probability 0, every other at -inf
    (a server that could not score the labels, http_runtime.py). A scored row never
    has that shape: its labels' log-probabilities are finite sums."""
    z = np.asarray(logprobs, dtype=np.float64)
    return z.size > 1 and int(np.isneginf(z).sum()) == z.size - 1 and float(z.max()) == 0.0


def row_confidence(out_type: OutputType, logprobs: Sequence[float], prior: Prior) -> float | None:
    """The row's confidence, or None where it was not scored: a decoded answer carries no
    probability, so it ranks after every scored one (precision-first LIMIT)."""
    if unscored(logprobs):
        return None
    return confidence(out_type, probabilities(logprobs), prior)


PRIOR_FLOOR = 1e-9  # Prior.calibrate divides by at least this


def content_free_prior(method: str, rows: Sequence[Sequence[float]]) -> tuple[Prior, str | None]:
    """The prior from the content-free prompts' label log-probabilities, or no
    calibration and the reason, where they cannot make one (see :func:`_prior_of`)."""
    return _prior_of(method, rows, "content-free prompts")


def sample_prior(
    method: str, rows: Sequence[Sequence[float]], sampled: int
) -> tuple[Prior, str | None]:
    """The prior of ``batch`` or ``table`` calibration: the mean label distribution of
    ``sampled`` rows of the operator's input or its table (executors/lm/priors.py)."""
    prior, unusable = _prior_of(method, rows, "sampled rows")
    if prior.probs is not None:
        prior = Prior(method, prior.probs, sampled)
    return prior, unusable


def _prior_of(method: str, rows, what: str) -> tuple[Prior, str | None]:
    """No calibration, and the reason, where the rows cannot make a prior: a prompt
    decoded rather than scored (its one-hot "distribution" is an answer, not the model's
    belief), or a label at the floor, which the division would turn into the answer of
    every row."""
    decoded = sum(unscored(r) for r in rows)
    if decoded:
        return Prior("off", None), f"{decoded} of {len(rows)} {what} were decoded, not scored"
    probs = average([probabilities(r) for r in rows])
    if min(probs) <= PRIOR_FLOOR:
        return Prior("off", None), f"a label has prior probability {min(probs):.1e}"
    return Prior(method, probs), None


def average(prob_rows: Sequence[np.ndarray]) -> tuple[float, ...]:
    return tuple(float(x) for x in np.mean(np.vstack(prob_rows), axis=0))
