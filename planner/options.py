"""Switches for the planner's rewrites, so a naive baseline can always be run."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .physical.task import DEFAULT_CALIBRATION, calibration_value
from .retrieval import method_value

# One switch per rule in planner/rules (plus prefix_reorder, which orders LM requests).
REWRITES = (
    "pushdown",
    "cascade",
    "late_select",
    "short_circuit",
    "predicate_order",
    "early_exit",
    "dedup",
    "projection_pruning",
    "prefix_reorder",
    "proxy",
)


PREFIX_ORDERS = ("ggr", "column", "table")
# What orders precision-first LIMIT's rows (executors/lm/embedding_judge.py): the LM's
# calibrated confidence alone, or averaged with the sentence embedder's judgement where
# the query names texts for its answers (options, or examples of each answer).
RANK_BY = ("lm+embedding", "lm")


def accuracy_value(value, what: str) -> float:
    """An agreement target with the LM: a number in [0.5, 1) (1 means: the LM, always)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1:
        raise TypeError(f"{what} must be a number from 0.5 to below 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PlanOptions:
    """Which optimisations may fire. ``PlanOptions.naive()`` turns every one off.

    naive means: LM on every row in table order, no dedup, no pushdown, no early exit,
    no prefix-aware order, no proxy model.
    """

    pushdown: bool = True
    cascade: bool = True
    late_select: bool = True
    short_circuit: bool = True
    predicate_order: bool = True
    early_exit: bool = True
    dedup: bool = True
    projection_pruning: bool = True
    prefix_reorder: bool = True
    proxy: bool = True  # a proxy model may answer for the LM where a target allows it
    accuracy_target: float | None = None
    # How prompts lay out a call's fields (planner/prefix/layout.py): part of what the
    # model reads, so not a rewrite: naive plans use the same layout. "table" (fields as
    # written) keeps a row's prompt independent of every other row; "ggr" and "column"
    # reorder fields from the data, so a row's prompt can change when other rows do.
    prefix_order: str = "table"
    # Label-free calibration of closed-set answers: what the model reads and how its
    # answer is read, not a rewrite, so naive plans use it too. "table" had the higher
    # mean on bench/wording.py's dev part for the bundled Gemma on every measure (per row,
    # count, expected count), against content_free, batch and the rest; for SmolLM2 it was
    # within 0.01 of batch and above content_free. The held-out wordings confirmed it
    # against content_free for both models, and SemBench movie worded afresh went 0.507
    # -> 0.636 (bench/results/wording/wording-20261203-162430.md, docs/wording.md).
    calibration: str = DEFAULT_CALIBRATION
    # How many sampled rows (of the operator's table for "table", of the rows passing the
    # WHERE's relational conjuncts for "batch"; seeded) a prior is the mean of.
    calibration_rows: int = 32
    # Ask each closed-set operator's calibration sample again under a trivial rewording
    # and report how many answers change (executors/lm/wording_check.py); costs up to
    # calibration_rows more calls an operator.
    check_wording: bool = False
    # How retrieval ranks context rows where a call does not say (planner/retrieval.py).
    retrieval: str = "hybrid"
    # Precision-first LIMIT (planner.logical.RankLimit): LIMIT k over an LM condition
    # returns the k rows the model is surest of among at most this many candidates (a
    # fixed sample when there are more); 0 turns it off. Part of the answer, so naive
    # plans keep it. 64: on the tasks of bench/precision_cap.py, mean precision@3 0.539
    # (first rows that pass), 0.561 at 16, 0.580 at 64, 0.578 at 256, for 8.9, 15.2, 31.2
    # and 49.3 LM calls a query (bench/results/precision/precision-cap-20261206-195507.md).
    precision_first: int = 64
    rank_by: str = "lm+embedding"
    # Per-query caps; hitting one stops the query with LimitExceeded (not plan choices:
    # naive plans keep them too).
    max_lm_calls: int | None = None
    max_prompt_tokens: int | None = None
    max_seconds: float | None = None

    def __post_init__(self):
        for name in ("max_lm_calls", "max_prompt_tokens", "max_seconds"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise TypeError(f"{name} must be a positive number, got {value!r}")
        if (
            isinstance(self.precision_first, bool)
            or not isinstance(self.precision_first, int)
            or self.precision_first < 0
        ):
            raise TypeError(
                "precision_first must be a number of rows (0 turns it off), "
                f"got {self.precision_first!r}"
            )
        if (
            isinstance(self.calibration_rows, bool)
            or not isinstance(self.calibration_rows, int)
            or self.calibration_rows < 1
        ):
            raise TypeError(
                f"calibration_rows must be a positive number of rows, got {self.calibration_rows!r}"
            )
        if not isinstance(self.check_wording, bool):
            raise TypeError(f"check_wording must be True or False, got {self.check_wording!r}")
        if self.accuracy_target is not None:
            accuracy_value(self.accuracy_target, "accuracy_target")
        calibration_value(self.calibration, "calibration")
        if self.rank_by not in RANK_BY:
            raise TypeError(f"rank_by must be one of {', '.join(RANK_BY)}, got {self.rank_by!r}")
        method_value(self.retrieval, "retrieval")
        if self.prefix_order not in PREFIX_ORDERS:
            raise TypeError(
                f"prefix_order must be one of {', '.join(PREFIX_ORDERS)}, got {self.prefix_order!r}"
            )

    @classmethod
    def naive(cls) -> PlanOptions:
        return cls(**{name: False for name in REWRITES})

    @classmethod
    def from_kwargs(cls, base: PlanOptions | None = None, **kwargs) -> PlanOptions:
        """Apply ``optimize=`` and per-rewrite keywords on top of ``base``."""
        opts = base or cls()
        optimize = kwargs.pop("optimize", None)
        if optimize is False:
            opts = replace(cls.naive(), **opts.kept())
        elif optimize is True:
            opts = replace(cls(), **opts.kept())
        known = {f.name for f in fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(
                f"unknown option(s): {', '.join(sorted(unknown))}; "
                f"known: optimize, {', '.join(sorted(known))}"
            )
        return replace(opts, **kwargs)

    def kept(self) -> dict:
        """The settings that are not rewrite switches (``optimize=`` leaves them alone)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in REWRITES}

    def enabled(self) -> list[str]:
        return [name for name in REWRITES if getattr(self, name)]
