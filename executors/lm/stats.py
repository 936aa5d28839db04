"""What a query cost: LM calls, tokens (and how many the KV cache served), time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from semql.planner.physical.prompt_format import quote_value

# An operator whose answers are (nearly) all the same over this many distinct inputs is
# reported: a constant answer looks like a result but carries no information.
UNIFORM_MIN_INPUTS = 20
UNIFORM_SHARE = 0.95
# A warning when at least one sampled row in five changes its answer under a trivial
# rewording (executors/lm/wording_check.py): a user-facing line, not a tuned threshold.
WORDING_WARN_SHARE = 0.2


def token_hit_rate(cached: int, total: int) -> float:
    """Prompt tokens served from the KV cache / all prompt tokens."""
    return cached / total if total else 0.0


@dataclass
class OperatorStats:
    """Figures of one plan operator (EXPLAIN ANALYZE shows them beside the node)."""

    operator: str
    rows_in: int = 0
    rows_out: int | None = None
    lm_calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    prefix_hit_count: int = 0  # seed 003's PHC of the prompts in the order they ran
    calibration: str = ""  # how closed-set answers were decided (prior and method)
    calibration_calls: int = 0  # prompts scored for the prior alone (not a row answered)
    answer_counts: Counter = field(default_factory=Counter)  # per distinct input
    fields_cut: int = 0  # prompts whose field values were cut further to fit the window
    prior_unusable: str = ""  # why the label prior was not applied (closed_set.py)
    wording_check: str = ""  # what moved under a trivial rewording (wording_check.py)
    wording_changed: float = 0.0  # the share of sampled rows whose answer changed
    # on a cluster: per actor, [LM calls, prompt tokens, KV-cached prompt tokens]
    workers: dict[str, list[int]] = field(default_factory=dict)
    retries: int = 0  # blocks sent again because their actor died

    def count_worker(self, worker: str, prompt_tokens: int, cached_tokens: int) -> None:
        figures = self.workers.setdefault(worker, [0, 0, 0])
        figures[0] += 1
        figures[1] += prompt_tokens
        figures[2] += cached_tokens

    def uninformative(self) -> str | None:
        """A warning when one answer covers nearly every distinct input."""
        n = sum(self.answer_counts.values())
        if n < UNIFORM_MIN_INPUTS:
            return None
        value, top = self.answer_counts.most_common(1)[0]
        if top / n < UNIFORM_SHARE:
            return None
        return (
            f"{self.operator}: the same answer {value} for {top} of {n} distinct inputs "
            f"({top / n:.0%}); such answers carry little information about the rows "
            f"(add examples, reword the question, or try another model)"
        )

    def cut_warning(self) -> str | None:
        if not self.fields_cut:
            return None
        return (
            f"{self.operator}: the field values of {self.fields_cut} prompt(s) were cut "
            "further to fit the model's window; their answers read less of the row"
        )

    def prior_warning(self) -> str | None:
        if not self.prior_unusable:
            return None
        return (
            f"{self.operator}: its label prior is unusable "
            f"({self.prior_unusable}); calibration not applied, each row's own highest "
            "label answers"
        )

    def wording_warning(self) -> str | None:
        if self.wording_changed < WORDING_WARN_SHARE:
            return None
        return (
            f"{self.operator}: {self.wording_check}; its answers depend on the wording, "
            "so check a few of them (add examples of both answers, or reword the question)"
        )

    def absorb(self, other: OperatorStats) -> None:
        """Add another run's LM work (e.g. the sample a plan decision was made on)."""
        for name in (
            "lm_calls",
            "calibration_calls",
            "prompt_tokens",
            "cached_prompt_tokens",
            "generated_tokens",
            "prefix_hit_count",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cache_hits += other.cache_hits
        self.seconds += other.seconds
        self.retries += other.retries
        for worker, (calls, tokens, cached) in other.workers.items():
            figures = self.workers.setdefault(worker, [0, 0, 0])
            figures[0] += calls
            figures[1] += tokens
            figures[2] += cached

    def summary(self) -> str:
        parts = [f"rows in {self.rows_in}"]
        if self.rows_out is not None:
            parts.append(f"out {self.rows_out}")
        parts += [
            f"LM calls {self.lm_calls}"
            + (f" (+{self.calibration_calls} calibration)" if self.calibration_calls else ""),
            f"prompt tok {self.prompt_tokens} (KV-cached {self.cached_prompt_tokens}, "
            f"{token_hit_rate(self.cached_prompt_tokens, self.prompt_tokens):.0%})",
            f"gen tok {self.generated_tokens}",
            f"cache hits {self.cache_hits}",
            f"{self.seconds:.2f}s",
        ]
        if self.prefix_hit_count:
            parts.append(f"PHC {self.prefix_hit_count}")
        if self.stopped_early:
            parts.append("stopped early")
        if self.calibration:
            parts.append(self.calibration)
        if self.wording_check:
            parts.append("wording check: " + self.wording_check)
        if self.workers:
            parts.append(self.placement_summary())
        return ", ".join(parts)

    def placement_summary(self) -> str:
        """Per cluster actor: LM calls and the share of prompt tokens its KV cache served."""
        each = "; ".join(
            f"{worker} {calls} calls ({token_hit_rate(cached, tokens):.0%} KV-cached)"
            for worker, (calls, tokens, cached) in sorted(self.workers.items())
        )
        retried = f", {self.retries} block(s) retried" if self.retries else ""
        return f"actors: {each}{retried}"


@dataclass
class QueryStats:
    """Totals of the last query (``Connection.stats``) and per-operator figures."""

    lm_calls: int = 0
    calibration_calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    cache_hits: int = 0
    prefix_hit_count: int = 0
    seconds: float = 0.0
    operators: list[OperatorStats] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, op: OperatorStats) -> None:
        self.operators.append(op)

    def total(self) -> None:
        """Sum the operators' LM figures into the totals."""
        for name in (
            "lm_calls",
            "calibration_calls",
            "prompt_tokens",
            "cached_prompt_tokens",
            "generated_tokens",
            "cache_hits",
            "prefix_hit_count",
        ):
            setattr(self, name, sum(getattr(op, name) for op in self.operators))
        for op in self.operators:
            warnings = (op.uninformative(), op.cut_warning(), op.prior_warning())
            for warning in (*warnings, op.wording_warning()):
                if warning and warning not in self.warnings:
                    self.warnings.append(warning)

    @property
    def token_hit_rate(self) -> float:
        return token_hit_rate(self.cached_prompt_tokens, self.prompt_tokens)


def prefix_hits(previous: list | None, fields: list) -> int:
    """Seed 003's hit count of one prompt: squared lengths of its leading (name, value)
    fields equal to the previous prompt's."""
    hits = 0
    for a, b in zip(previous or (), fields, strict=False):
        if a != b:
            break
        hits += (len(b[0]) + len(quote_value(b[1])) + 3) ** 2  # ": " and the newline
    return hits
