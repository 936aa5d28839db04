"""Reference algorithms of seed 003, kept to check and benchmark the fast GGR.

``ophr``: the exact optimum (exponential; tables of a few rows only). ``ggr_plain``:
Algorithm 1 as written — one full rescan of the remaining rows per group picked —
stopping only when no value repeats (further picks would add nothing).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .column_order import column_scores, field_rank
from .ggr import functional_dependencies
from .table import CodedTable, Ordering


def ophr(table: CodedTable) -> float:
    """The optimal prefix hit count (seed 003, Sec. 2.1)."""
    codes, weights = table.codes, table.weights

    @cache
    def best(rows: frozenset, cols: frozenset) -> float:
        if len(rows) <= 1 or not cols:
            return 0.0
        if len(cols) == 1:
            (c,) = cols
            values, counts = np.unique(codes[list(rows), c], return_counts=True)
            return float((weights[c][values] * (counts - 1)).sum())
        top = 0.0
        for c in cols:
            for v in set(codes[list(rows), c].tolist()):
                group = frozenset(r for r in rows if codes[r, c] == v)
                hit = weights[c][v] * (len(group) - 1)
                top = max(top, hit + best(group, cols - {c}) + best(rows - group, cols))
        return top

    n, m = table.shape
    return best(frozenset(range(n)), frozenset(range(m)))


def ggr_plain(table: CodedTable, use_fds: bool = True) -> Ordering:
    """Algorithm 1 of seed 003 without the vectorised grouping (see ggr.py)."""
    n, m = table.shape
    fds = functional_dependencies(table) if use_fds else {c: () for c in range(m)}
    rank = list(field_rank(column_scores(table)))
    rows_out: list[np.ndarray] = []
    fields_out = np.zeros((n, m), dtype=np.int64)

    def hitcount(rows: np.ndarray, c: int, cols: set[int]):
        values, first, counts = np.unique(
            codes := table.codes[rows, c], return_index=True, return_counts=True
        )
        w = table.weights[c][values].copy()
        for d in fds[c]:
            if d in cols:
                w += table.weights[d][table.codes[rows[first], d]]
        del codes
        return values, w * (counts - 1)

    def recurse(rows: np.ndarray, cols: list[int], prefix: list[int]) -> None:
        while len(rows):
            if len(rows) == 1 or not cols:
                break
            best, best_c, best_v = 0.0, -1, -1
            for c in cols:
                values, hits = hitcount(rows, c, set(cols))
                i = int(hits.argmax())
                if hits[i] > best:
                    best, best_c, best_v = float(hits[i]), c, int(values[i])
            if best_c < 0:
                break  # nothing repeats: no pick adds to the hit count
            inside = table.codes[rows, best_c] == best_v
            implied = [d for d in rank if d in fds[best_c] and d in cols]
            rest = [x for x in cols if x != best_c and x not in implied]
            recurse(rows[inside], rest, [*prefix, best_c, *implied])
            rows = rows[~inside]
        if len(rows):
            rows_out.append(rows)
            fields_out[rows] = prefix + [c for c in rank if c in cols]

    recurse(np.arange(n), [c for c in rank], [])
    order = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    return Ordering(order, fields_out)
