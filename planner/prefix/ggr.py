"""Greedy Group Recursion (GGR, seed 003 Algorithm 1), vectorised.

GGR picks the (field, value) with the largest hit count — weight x (rows holding it - 1)
— puts that field first for those rows, and recurses on them without the field and on
the remaining rows with all fields. Done literally, it rescans the table once per group
picked: quadratic in practice (reference.py has that version, for tests and benchmarks).

Here the recursion runs level by level over all its sub-tables at once (at most one
level per field), each level a few numpy group counts over every row: every row joins
the group of its own best (field, value) by hit count within its sub-table — the value
the literal algorithm picks first among the row's values, since it picks in descending
hit count. Where a row's group came out a singleton (its partners joined better groups),
the row is placed again among the leftover rows and the groups already formed: the
literal algorithm's recount after removing rows. Groups run in descending hit count,
each a sub-table of the next level without its field. Rows with nothing to share keep
the table's column order (seed 002 scores) for their remaining fields.

Functional dependencies: a field c determines c' when the pair has as many distinct
values as c alone. A group of c's value then shares c' too, so c' follows c in those
rows and counts in c's hit count (Algorithm 1, lines 5-6).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .column_order import column_scores, field_rank
from .table import CodedTable, Ordering, counts_per_row, distinct_count, grouping


def functional_dependencies(table: CodedTable) -> dict[int, tuple[int, ...]]:
    """For each field, the other fields it determines (c -> c')."""
    n, m = table.shape
    if n == 0:
        return {c: () for c in range(m)}
    space = [len(w) for w in table.weights]
    distinct = [distinct_count(table.codes[:, c], space[c]) for c in range(m)]
    out: dict[int, tuple[int, ...]] = {}
    for c in range(m):
        if distinct[c] == n:
            out[c] = ()  # a key determines everything but never forms a group
            continue
        deps = []
        for d in range(m):
            if d == c or distinct[d] > distinct[c]:
                continue
            pair = table.codes[:, c] * space[d] + table.codes[:, d]
            if distinct_count(pair, space[c] * space[d]) == distinct[c]:
                deps.append(d)
        out[c] = tuple(deps)
    return out


def _sizes_of(formed: np.ndarray, sizes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Size of the formed group of each wanted key (0 when none); ``formed`` is sorted."""
    if not len(formed):
        return np.zeros(len(wanted), dtype=np.int64)
    at = np.searchsorted(formed, wanted).clip(max=len(formed) - 1)
    return np.where(formed[at] == wanted, sizes[at], 0)


class _Level:
    """Per-row state of the level-by-level recursion."""

    def __init__(self, table: CodedTable, use_fds: bool):
        self.t = table
        n, m = table.shape
        self.m = m
        self.rank = [int(c) for c in field_rank(column_scores(table))]  # fallback order
        self.fds = functional_dependencies(table) if use_fds else {c: () for c in range(m)}
        # a group is (sub-table, field, value): key node * total + offset[field] + code
        cards = [len(w) for w in table.weights]
        self.offset = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
        self.total = int(sum(cards)) or 1
        self.remaining = np.ones((n, m), dtype=bool)
        self.node = np.zeros(n, dtype=np.int64)  # sub-table of each row
        self.nodes = 1  # sub-tables at the current level
        self.placed = np.full((n, m), -1, dtype=np.int64)  # fields put first, in order
        self.depth = np.zeros(n, dtype=np.int64)

    def best(self, idx: np.ndarray, joined=None):
        """Per row of ``idx``: best hit count, its weight, and its group key."""
        score = np.zeros(len(idx))
        weight = np.zeros(len(idx))
        key = np.full(len(idx), -1, dtype=np.int64)
        node = self.node[idx]
        for c in self.rank:  # ties go to the better-ranked field
            has = self.remaining[idx, c]
            codes = self.t.codes[idx, c]
            card = len(self.t.weights[c])
            counts = counts_per_row(node * card + codes, self.nodes * card)
            group = node * self.total + self.offset[c] + codes
            if joined is not None:
                counts = counts + joined(group)
            w = self.t.weights[c][codes].copy()
            for d in self.fds[c]:
                w += np.where(self.remaining[idx, d], self.t.weights[d][self.t.codes[idx, d]], 0)
            s = np.where(has, w * (counts - 1), 0.0)
            better = s > score
            score[better], weight[better], key[better] = s[better], w[better], group[better]
        return score, weight, key

    def settle_singletons(self, idx: np.ndarray, key: np.ndarray) -> np.ndarray:
        """Place again the rows left alone in their group (their partners went elsewhere):
        among themselves and the groups already formed. Keys of groups still of one row
        become -1 (nothing to share)."""
        space = self.nodes * self.total + 1
        groups, inverse, sizes, _ = grouping(key + 1, space)  # key -1: no group
        alone = (sizes[inverse] == 1) & (key >= 0)
        if alone.any():
            kept = (sizes > 1) & (groups > 0)
            joined = partial(_sizes_of, groups[kept] - 1, sizes[kept])
            key = key.copy()
            key[alone] = self.best(idx[alone], joined)[2]
            groups, inverse, sizes, _ = grouping(key + 1, space)
        return np.where(sizes[inverse] > 1, key, -1)

    def step(self, idx: np.ndarray, order_key: np.ndarray, level: int) -> np.ndarray:
        """One recursion level over the rows ``idx``; returns the rows that go deeper."""
        _, weight, key = self.best(idx)
        key = self.settle_singletons(idx, key)
        grouped = key >= 0
        rows, keys, w = idx[grouped], key[grouped], weight[grouped]
        if not len(rows):
            return rows
        groups, inverse, sizes, first = grouping(keys, self.nodes * self.total)
        parent = groups // self.total
        hits = w[first] * (sizes - 1)
        # within each parent sub-table: biggest hit count first, then first appearance
        ranked = np.lexsort((first, -hits, parent))
        position = np.empty(len(groups), dtype=np.int64)
        block_start = np.searchsorted(parent[ranked], parent[ranked])
        position[ranked] = np.arange(len(groups)) - block_start
        order_key[rows, level] = position[inverse]
        self.node[rows] = inverse
        self.nodes = len(groups)
        field = np.searchsorted(self.offset, keys % self.total, side="right") - 1
        for c in range(self.m):
            chosen = rows[field == c]
            if not len(chosen):
                continue
            implied = [d for d in self.rank if d in self.fds[c]]
            for f in [c, *implied]:
                put = chosen[self.remaining[chosen, f]]
                self.placed[put, self.depth[put]] = f
                self.depth[put] += 1
                self.remaining[put, f] = False
        deeper = (sizes[inverse] > 1) & self.remaining[rows].any(axis=1)
        return rows[deeper]

    def field_orders(self) -> np.ndarray:
        """Placed fields first, then the remaining ones in column-score order."""
        out, depth = self.placed.copy(), self.depth.copy()
        for c in self.rank:
            put = np.nonzero(self.remaining[:, c])[0]
            out[put, depth[put]] = c
            depth[put] += 1
        return out


def ggr(table: CodedTable, use_fds: bool = True) -> Ordering:
    """A row order and per-row field orders with a high prefix hit count."""
    n, m = table.shape
    state = _Level(table, use_fds)
    order_key = np.full((n, m + 1), np.iinfo(np.int64).max, dtype=np.int64)
    idx = np.arange(n)
    for level in range(m):
        if len(idx) < 2:
            break
        idx = state.step(idx, order_key, level)
    keys = [np.arange(n)] + [order_key[:, c] for c in range(m, -1, -1)]
    return Ordering(np.lexsort(keys), state.field_orders())
