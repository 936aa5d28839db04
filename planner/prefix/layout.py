"""Prompt layouts: the field order of each row's prompt and the order rows are asked in.

The field order is part of what the model reads, so it must not depend on the plan:
it is computed from the distinct argument tuples of the call's whole source (the scope's
FROM, before any filter), the same for naive and optimised plans, every batch and every
sample. Only the *row* order depends on the plan (``prefix_reorder``), and with the
runtime's chunk-aligned KV reuse the row order never changes an answer.

Methods: ``table`` (the default: fields as written, rows asked sorted by their values in
that order, so rows that share leading fields run together; a row's prompt depends on
that row alone), ``ggr`` (per-row field order, seed 003) and ``column`` (one field order by
seed 002's column score). The last two read the data to choose field orders, so the same
row's prompt (hence its answer and cache key) can change when unrelated rows change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import logical as L
from ..physical.prompt_format import FIELD_OVERHEAD_CHARS
from ..scope_sql import argument_columns, scope_query, source_known
from .column_order import column_order
from .ggr import ggr
from .phc import prefix_hit_count, shared_lengths
from .table import CodedTable, Ordering

METHODS = ("ggr", "column", "table")
MAX_LAYOUT_ROWS = 200_000  # distinct tuples laid out; beyond, the fixed column order


@dataclass
class PromptLayout:
    """Field order per argument tuple, and each tuple's place in the run order."""

    method: str
    names: list[str]
    fixed: tuple[int, ...]  # field order of tuples not laid out one by one
    orders: dict[tuple, tuple[int, ...]] = field(default_factory=dict)
    rank: dict[tuple, int] = field(default_factory=dict)
    rows: int = 0
    hit_rate: float = 0.0  # share of field characters a row shares with the previous
    shared_chars: float = 0.0  # mean field characters shared with the previous row
    phc: float = 0.0  # prefix hit count of the run order (seed 003)
    truncated: bool = False

    def order_of(self, values: tuple) -> tuple[int, ...]:
        return self.orders.get(values, self.fixed)

    def run_order(self, tuples: Sequence[tuple]) -> list[int]:
        """Positions of ``tuples`` in the order to ask them (stable for unknown ones).

        The table layout has no plan-time rank: its rows are sorted by their values in
        the written field order, which puts rows with equal leading fields together."""
        if self.method == "table":
            return sorted(range(len(tuples)), key=lambda i: _sort_key(tuples[i]))
        last = len(self.rank)
        return sorted(range(len(tuples)), key=lambda i: self.rank.get(tuples[i], last))

    def describe(self) -> str:
        text = f"prompt layout: {self.method}"
        if self.method == "table":
            return text + " (fields as written)"
        if self.method == "column":
            text += " (fields: " + ", ".join(self.names[i] for i in self.fixed) + ")"
        text += f" over {self.rows} distinct tuples, {self.hit_rate:.0%} of field text shared"
        if self.truncated:
            text += f" (first {MAX_LAYOUT_ROWS} laid out, the rest in column order)"
        return text


def _sort_key(values: tuple) -> tuple:
    """Values in field order, comparable whatever their types (NULLs first)."""
    return tuple((v is not None, str(v)) for v in values)


def _cell_lengths(names: Sequence[str], rows: Sequence[tuple]) -> list[list[float]]:
    return [
        [len(n) + FIELD_OVERHEAD_CHARS + len(str(v)) for n, v in zip(names, row, strict=True)]
        for row in rows
    ]


def layout_rows(method: str, names: Sequence[str], rows: Sequence[tuple]) -> PromptLayout:
    """Lay out the distinct argument tuples ``rows`` of one call."""
    m = len(names)
    if method == "table" or not rows:
        return PromptLayout(method, list(names), tuple(range(m)), rows=len(rows))
    lengths = _cell_lengths(names, rows)
    table = CodedTable.from_values(rows, lengths)
    fixed = column_order(table)
    order: Ordering = ggr(table) if method == "ggr" else fixed
    layout = PromptLayout(method, list(names), tuple(int(c) for c in fixed.fields[0]))
    layout.rows = len(rows)
    if method == "ggr":
        layout.orders = {
            tuple(row): tuple(int(c) for c in order.fields[i]) for i, row in enumerate(rows)
        }
    layout.rank = {tuple(rows[r]): pos for pos, r in enumerate(order.rows.tolist())}
    size = [np.sqrt(w) for w in table.weights]
    shared = shared_lengths(table, order, size)
    total = float(sum(sum(x) for x in lengths)) or 1.0
    layout.shared_chars = float(shared.mean())
    layout.hit_rate = float(shared.sum()) / total
    layout.phc = prefix_hit_count(table, order)
    return layout


def attach_layouts(plan: L.QueryPlan, stats, method: str) -> None:
    """Lay out every multi-field LMMap/LMFilter whose source is known before execution.

    ``stats.fetch_rows(sql)`` reads the distinct argument tuples. A source that an LM
    call feeds (an LLMJoin, a CTE with LM calls) is not known yet: such calls keep the
    written field order, which is as deterministic.
    """
    for scope in plan.scopes:
        select = scope.select
        known = source_known(select)
        for node in scope.root.walk():
            if not isinstance(node, L.LMOperator) or len(node.call.fields) < 2:
                continue
            names = [f.name for f in node.call.fields]
            if method == "table" or not known:
                node.layout = layout_rows("table", names, [])
                continue
            args = argument_columns([f.expr for f in node.call.fields])
            sql = scope_query(select, args, [])
            rows = stats.fetch_rows(
                f"SELECT DISTINCT * FROM ({sql}) ORDER BY ALL LIMIT {MAX_LAYOUT_ROWS + 1}"
            )
            truncated = len(rows) > MAX_LAYOUT_ROWS
            layout = layout_rows(method, names, rows[:MAX_LAYOUT_ROWS])
            layout.truncated = truncated
            node.layout = layout
            node.notes.append(layout.describe())
