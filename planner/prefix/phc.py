"""Prefix hit count (seed 003, eq. 1-2): how much of each prompt the previous one shares.

For each row in schedule order, the weights (squared lengths) of its leading fields
that equal the previous row's fields at the same positions, summed over all rows. A
field matches only when it is the same field with the same value, since fields are
rendered with their names.
"""

from __future__ import annotations

import numpy as np

from .table import CodedTable, Ordering


def cells(table: CodedTable, order: Ordering) -> tuple[np.ndarray, np.ndarray]:
    """(field ids, value codes) of every cell in schedule order: two (n, m) arrays."""
    fields = order.fields[order.rows]
    values = np.take_along_axis(table.codes[order.rows], fields, axis=1)
    return fields, values


def prefix_hit_count(table: CodedTable, order: Ordering) -> float:
    n, m = table.shape
    if n < 2 or m == 0:
        return 0.0
    fields, values = cells(table, order)
    same = (fields[1:] == fields[:-1]) & (values[1:] == values[:-1])
    leading = np.cumprod(same, axis=1).astype(bool)  # still matching from the first cell
    weight = np.zeros(values.shape, dtype=np.float64)
    for c, w in enumerate(table.weights):
        mask = fields == c
        weight[mask] = w[values[mask]]
    return float((weight[1:] * leading).sum())


def shared_lengths(table: CodedTable, order: Ordering, lengths: np.ndarray) -> np.ndarray:
    """Per row in schedule order, the summed ``lengths`` of its fields shared with the
    previous row (the first row shares none). ``lengths[c][code]``: a cell's length."""
    n, m = table.shape
    out = np.zeros(n, dtype=np.float64)
    if n < 2 or m == 0:
        return out
    fields, values = cells(table, order)
    same = (fields[1:] == fields[:-1]) & (values[1:] == values[:-1])
    leading = np.cumprod(same, axis=1).astype(bool)
    size = np.zeros(values.shape, dtype=np.float64)
    for c in range(m):
        mask = fields == c
        size[mask] = lengths[c][values[mask]]
    out[1:] = (size[1:] * leading).sum(axis=1)
    return out
