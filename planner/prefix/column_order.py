"""Seed 002's fixed field order: one order for every row, then a lexicographic row sort.

A field scores (average length x rows / distinct values): long values that repeat
often go first, because they are the prefixes most rows can share.
"""

from __future__ import annotations

import numpy as np

from .table import CodedTable, Ordering, distinct_count


def column_scores(table: CodedTable) -> np.ndarray:
    n, m = table.shape
    scores = np.zeros(m)
    for c in range(m):
        codes = table.codes[:, c]
        length = np.sqrt(table.weights[c])[codes]
        distinct = distinct_count(codes, len(table.weights[c])) if n else 1
        scores[c] = (length.mean() if n else 0.0) * n / max(distinct, 1)
    return scores


def field_rank(scores: np.ndarray) -> np.ndarray:
    """Field indices by descending score; ties keep the written order."""
    return np.argsort(-scores, kind="stable")


def column_order(table: CodedTable) -> Ordering:
    n, m = table.shape
    fields = field_rank(column_scores(table))
    # np.lexsort sorts by its last key first.
    rows = np.lexsort([table.codes[:, c] for c in fields[::-1]]) if m else np.arange(n)
    return Ordering.fixed(rows, fields, n)


def table_order(table: CodedTable) -> Ordering:
    """The rows as given, fields as written: the baseline."""
    n, m = table.shape
    return Ordering.fixed(np.arange(n), np.arange(m), n)
