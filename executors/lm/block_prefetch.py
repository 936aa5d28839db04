"""Rows sent ahead to a cluster's actors in contiguous blocks (``Runtime.blocks``).

The LM executor hands over the rows that need the model, in the order it will read them
(the planner's prefix order). They are cut into blocks of consecutive rows, and a cut
falls only where two neighbours share no more of their prompt than every row does (the
question and examples), so rows that share a longer prefix (the same leading field
values) go to one actor and meet its KV cache. Where the actors put several rows in one
decode (the pool's ``actor_batch_rows``), a block holds a multiple of that many rows: the
batched recipe pads a short last decode to its fixed shape, so a block of 25 rows at 8 a
decode paid for 32, and two actors cut into such blocks ran 1.60x one actor instead of
the rows' 2x (bench/results/ray/ray-20261206-081611). Each actor holds up to ``DEPTH`` blocks:
one running, one queued behind it, so it never waits for the coordinator.

Results are read back in the executor's order, so answers, statistics and the result
cache are those of sequential execution. Caps hold exactly: a block is cut to the LM calls
the budget still allows, counting rows sent and not yet read. A block whose actor dies is
sent again to a live one (``retries``). ``close`` cancels what has not finished.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from semql.grammar.types import OutputType

from ..runtimes.runtime import WorkerLost
from .budget import Budget

DEPTH = 2  # blocks in flight per actor
MAX_BLOCK_ROWS = 32  # rows per block at most (before a shared prefix is kept whole)
BLOCKS_PER_ACTOR = 4  # at least this many blocks per actor where rows allow: balance


def _segments(prompt: str) -> tuple[str, ...]:
    return tuple(getattr(prompt, "segments", None) or (prompt,))


def _shared(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def cut_blocks(prompts: Sequence[str], actors: int, multiple: int = 1) -> list[list[int]]:
    """Positions of ``prompts`` in blocks of consecutive rows, cut only between rows
    that share no more than the common head of all of them (up to 4x the block size),
    and after a ``multiple`` of rows (an actor's rows per decode) where the prefixes
    allow one before twice the block size."""
    if not prompts:
        return []
    size = max(1, min(MAX_BLOCK_ROWS, math.ceil(len(prompts) / (actors * BLOCKS_PER_ACTOR))))
    size = math.ceil(size / multiple) * multiple
    segs = [_segments(p) for p in prompts]
    head = min(_shared(segs[0], s) for s in segs)
    blocks: list[list[int]] = [[0]]
    for i in range(1, len(segs)):
        block = blocks[-1]
        same_prefix = _shared(segs[i - 1], segs[i]) > head
        # a free cut waits for a whole multiple of rows, up to twice the block size
        whole = len(block) >= size and (len(block) % multiple == 0 or len(block) >= 2 * size)
        if len(block) >= 4 * size or (whole and not same_prefix):
            blocks.append([i])
        else:
            block.append(i)
    return blocks


class BlockPrefetch:
    """``take(job)``: the result of job's prompt, computed on a cluster actor."""

    def __init__(
        self,
        pool,
        prompts: dict[int, str],
        jobs: Sequence[int],
        out_type: OutputType,
        scored: bool,
        budget: Budget | None = None,
        steps: bool = False,
    ):
        self._pool = pool
        self._out_type = out_type
        self._scored = scored
        self._steps = steps  # generated map rows with their answer steps shared
        self._budget = budget
        self._jobs = list(jobs)
        self._prompts = prompts
        self._blocks = [
            [self._jobs[p] for p in block]
            for block in cut_blocks(
                [prompts[j] for j in self._jobs],
                len(pool.live),
                pool.actor_batch_rows,
            )
        ]
        self._next = 0
        self._flying: dict[int, tuple[int, object]] = {}  # block -> (actor, reference)
        self._done: dict[int, dict[int, object]] = {}  # block -> job -> result
        self._block_of: dict[int, int] = {}
        self._unread = 0  # rows sent whose results the executor has not taken
        self.retries = 0

    def _allowed(self, rows: int) -> int:
        if self._budget is None:
            return rows
        return self._budget.room(rows, pending=self._unread)

    def _send(self, b: int, actor: int) -> None:
        prompts = [self._prompts[j] for j in self._blocks[b]]
        ref = self._pool.submit(actor, prompts, self._out_type, self._scored, self._steps)
        self._flying[b] = (actor, ref)

    def _fill(self) -> None:
        while self._next < len(self._blocks):
            load = {a: 0 for a in self._pool.live}
            for actor, _ in self._flying.values():
                load[actor] = load.get(actor, 0) + 1
            actor = min(load, key=lambda a: (load[a], a))
            if load[actor] >= DEPTH:
                return
            block = self._blocks[self._next]
            n = self._allowed(len(block))
            if n == 0:
                return
            if n < len(block):  # the cap allows part of it: the rest waits (and fails)
                self._blocks[self._next : self._next + 1] = [block[:n], block[n:]]
                block = block[:n]
            for job in block:
                self._block_of[job] = self._next
            self._unread += len(block)
            self._send(self._next, actor)
            self._next += 1

    def take(self, job: int):
        self._fill()
        b = self._block_of.get(job)
        if b is None:  # a cap refused it: say which, with the work done
            if self._budget is not None:
                self._budget.check()
            raise RuntimeError(f"request {job} was never sent")  # a bug, not bad input
        if b not in self._done:
            self._done[b] = self._wait(b)
        self._unread -= 1  # the executor spends it on the budget before the next take
        result = self._done[b].pop(job)
        if not self._done[b]:
            del self._done[b]
        return result

    def _wait(self, b: int) -> dict[int, object]:
        while True:
            actor, ref = self._flying.pop(b)
            try:
                results = self._pool.collect(actor, ref)
            except WorkerLost:  # its unfinished rows go to a live actor (or ClusterError)
                self.retries += 1
                live = self._pool.live
                load = {a: sum(1 for x, _ in self._flying.values() if x == a) for a in live}
                self._send(b, min(live, key=lambda a: (load[a], a)))
                continue
            return dict(zip(self._blocks[b], results, strict=True))

    def close(self) -> None:
        """Cancel the blocks not finished (a cancelled query stops its remote work)."""
        self._pool.cancel([ref for _, ref in self._flying.values()])
        self._flying.clear()
