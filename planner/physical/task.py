"""The physical plan's LM tasks: what the LM side needs to answer one operator's rows.

An :class:`LMTask` is a plain value: it holds no AST, no plan node, no connection and no
callback, so it pickles and can run in another process or on another machine (the Ray
issue's actors; tests/test_lm_task.py runs one in a fresh interpreter). Everything the
LM side decides for a row follows from the task, the row's values and the run inputs the
coordinator sends with them (a retrieved context per row, the rows a ``batch`` prior is
sampled from). The planner attaches one to every LMMap and LMFilter once its rules and
prompt layouts are final (:func:`attach_tasks`); executors read ``node.task`` and never
re-derive its parts from the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from semql.grammar.types import OutputType

from .. import logical as L
from ..calls import LMCall

if TYPE_CHECKING:
    from ..prefix.layout import PromptLayout


# How closed-set answers are calibrated (executors/lm/closed_set.py, priors.py): the prior
# of content-free inputs, of a seeded sample of the operator's rows ("batch"), or of the
# table those rows were filtered from ("table"); "off": the label with the highest
# probability as the model gives it.
CALIBRATIONS = ("content_free", "batch", "table", "off")
DEFAULT_CALIBRATION = "table"


def calibration_value(value, what: str) -> str:
    """``value`` if it names a calibration method, else a TypeError naming ``what``."""
    if value not in CALIBRATIONS:
        raise TypeError(f"{what} must be one of {', '.join(CALIBRATIONS)}, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class LMTask:
    """One LM operator's question, output type, prompt layout and decision rule.

    ``names`` are the prompt's field names: the call's row fields, then ``context`` when
    the rows come with a retrieved context (``with_context``; the coordinator retrieves,
    since it holds the database). ``examples`` are the call's, with a NULL context in
    examples written without one. ``calibration`` is the closed-set method resolved from
    the call's ``calibration=`` and the query's option. ``layout`` gives each row's field
    order; ``reorder_rows`` asks rows in its run order. Which rows are handed over (dedup,
    guard, early exit) is the coordinator's part, not the task's.
    """

    label: str
    question: str
    output: OutputType
    names: tuple[str, ...]
    examples: tuple[tuple, ...]
    calibration: str
    layout: PromptLayout | None = None
    reorder_rows: bool = False
    with_context: bool = False

    def field_orders(self, values: list[tuple]) -> list[tuple[int, ...]] | None:
        """Each row's field order in its prompt (None: as the call lists them)."""
        if self.layout is None:
            return None
        return [self.layout.order_of(v) for v in values]

    def run_order(self, values: list[tuple]) -> list[int] | None:
        """The order to ask the rows in (None: as handed over)."""
        if self.layout is None or not self.reorder_rows:
            return None
        return self.layout.run_order(values)


def calibration_of(call: LMCall, default: str) -> str:
    """A call's closed-set method: its own ``calibration=``, else the query's option."""
    return call.kwargs.get("calibration") or default


def lm_task(node: L.LMOperator, calibration: str) -> LMTask:
    """The task of one LMMap/LMFilter as its rules and layout left it."""
    call = node.call
    names = tuple(call.prompt_names)
    with_context = call.retrieval is not None
    examples = tuple(
        tuple(ex)
        if not with_context or len(ex) - 1 == len(names)
        else (*ex[:-1], None, ex[-1])  # an example without a context shows it as NULL
        for ex in call.examples
    )
    return LMTask(
        label=call.label,
        question=call.question,
        output=call.output,
        names=names,
        examples=examples,
        calibration=calibration_of(call, calibration),
        layout=node.layout,
        reorder_rows=node.reorder_rows,
        with_context=with_context,
    )


def attach_tasks(plan: L.QueryPlan, calibration: str) -> None:
    """Give every LMMap and LMFilter of the plan its task (the planner's last step)."""
    for scope in plan.scopes:
        for node in scope.root.walk():
            if isinstance(node, L.LMOperator):
                node.task = lm_task(node, calibration)
