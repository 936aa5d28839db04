"""How the rows of an LM operator are cut into blocks for a cluster's actors
(executors/lm/block_prefetch.py): consecutive rows, whole shared prefixes, and blocks in
multiples of the actors' rows per decode so that no decode is padded mid-query."""

from __future__ import annotations

from semql.executors.lm.block_prefetch import cut_blocks


class Prompt(str):
    """A prompt with its segments, as the LM executor renders them."""

    segments: tuple[str, ...]


def prompts(fields: list[str]) -> list[Prompt]:
    out = []
    for f in fields:
        p = Prompt(f"head|{f}")
        p.segments = ("head", f, "cue")
        out.append(p)
    return out


def test_blocks_are_consecutive_and_cover_every_row():
    rows = prompts([f"r{i}" for i in range(200)])
    blocks = cut_blocks(rows, actors=2)
    assert [i for b in blocks for i in b] == list(range(200))


def test_blocks_are_multiples_of_the_rows_per_decode():
    rows = prompts([f"r{i}" for i in range(200)])
    one = cut_blocks(rows, actors=2)
    assert {len(b) for b in one[:-1]} == {25}  # 200 rows, 2 actors x 4 blocks
    eight = cut_blocks(rows, actors=2, multiple=8)
    assert all(len(b) % 8 == 0 for b in eight)  # 200 is a multiple of 8: no padded decode
    padded = sum(-len(b) % 8 for b in one)  # what 8 rows a decode pays on 25-row blocks
    assert padded > 0


def test_rows_sharing_a_field_stay_in_one_block():
    fields = [f"movie{i // 10}" for i in range(60)]  # runs of 10 rows share a prefix
    rows = []
    for i, f in enumerate(fields):
        p = Prompt(f"head|{f}|{i}")
        p.segments = ("head", f, str(i), "cue")
        rows.append(p)
    for multiple in (1, 8):
        blocks = cut_blocks(rows, actors=2, multiple=multiple)
        for b in blocks:
            assert b[0] == 0 or fields[b[0]] != fields[b[0] - 1]
