"""Generated answers several rows to a decode (executors/runtimes/batch_generator.py) and
with their answer steps shared where rows go one at a time (shared_steps.py): a row's
answer is the same whatever rows share its decodes, in which order and how many, and a
query's answers, LM calls and caps are those of one row at a time."""

from __future__ import annotations

import csv
import random

import pytest

import semql
from semql.errors import LimitExceeded
from semql.executors.runtimes import greedy, shared_steps
from semql.grammar import types as T
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir


def _reviews(n: int) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        texts = list(dict.fromkeys(r["reviewText"] for r in csv.DictReader(f)))
    return random.Random(11).sample(texts, n)


@pytest.fixture
def traced():
    """``traced(ask, prompts)``: each prompt's answer text and a digest of every logits
    vector its tokens were chosen from (bit for bit), in the prompts' order."""

    def run(ask, prompts):
        with greedy.recording() as made:
            gens = ask(prompts)
        assert len(made) == len(prompts)  # one decoder a row, made in the rows' order
        return [(g.text, tuple(d.trace)) for g, d in zip(gens, made, strict=True)]

    return run


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "out_type"),
    [
        ("How many stars from 1 to 5 would the critic give?", T.IntType()),
        ("Which word of the review says most about it?", T.StrType(max_chars=60)),
    ],
    ids=["int", "text"],
)
@pytest.mark.parametrize("recipe", ["batched", "shared steps"])
def test_a_rows_generation_does_not_depend_on_its_batch_mates(
    request, traced, question, out_type, recipe
):
    """Every logits vector a row's tokens are chosen from is the same bits in another
    order, another split into calls, and alone."""
    if recipe == "batched":
        rt = request.getfixturevalue("gemma_batched")
        assert rt.batch_rows > 1
        ask = lambda ps: rt.generate_many(ps, out_type)  # noqa: E731
    else:
        rt = request.getfixturevalue("gemma_one_row")
        assert rt.step_rows > 1
        ask = lambda ps: rt.generate_rows(ps, out_type)  # noqa: E731
    build = PromptBuilder(rt.style, rt.format_chat).build
    prompts = [build(question, out_type, ["reviewText"], [t]) for t in _reviews(13)]
    base = traced(ask, prompts)
    assert len({len(trace) for _, trace in base}) > 1  # rows end at different steps
    order = list(range(len(prompts)))
    random.Random(7).shuffle(order)
    got = {}
    for part in (order[:5], order[5:]):  # another order, a batch of 5 and one of 8
        got.update(zip(part, traced(ask, [prompts[i] for i in part]), strict=True))
    assert [got[i] for i in range(len(prompts))] == base
    for i in order[:2]:  # alone: the other streams idle
        assert traced(ask, [prompts[i]]) == [base[i]]
    for text, _ in base:
        out_type.parse(text)  # every answer complete under its grammar


@pytest.mark.model
@pytest.mark.parametrize("runtime", ["gemma_batched", "gemma_one_row"])
def test_batched_int_map_answers_as_rows_one_at_a_time_and_caps_hold(request, monkeypatch, runtime):
    """The same rows in table order, reverse order and through the optimized plan get the
    same generated answers, one LM call per distinct row; max_lm_calls stops exactly.
    Where rows go one at a time, the map's rows take the shared-steps recipe."""
    rt = request.getfixturevalue(runtime)
    shared_calls = []
    generate = shared_steps.generate
    monkeypatch.setattr(
        shared_steps, "generate", lambda *a: shared_calls.append(len(a[1])) or generate(*a)
    )
    con = semql.connect(runtime=rt, cache=False)
    try:
        semql.load_sample(con)
        rows = "SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId"
        con.query(f"CREATE TABLE fwd AS {rows} LIMIT 13")
        con.query("CREATE TABLE bwd AS SELECT * FROM fwd ORDER BY reviewId DESC")
        distinct = con.query("SELECT count(DISTINCT reviewText) AS n FROM fwd").item()
        ask = (
            "SELECT reviewId, {{LLMMap('How many stars from 1 to 5 would the critic give?', "
            "reviewText, return_type='int')}} AS stars FROM "
        )
        answers = []
        for table, optimize in (("fwd", False), ("bwd", False), ("fwd", True)):
            answers.append(dict(con.query(ask + table, optimize=optimize).iter_rows()))
            assert con.stats.lm_calls == distinct
        assert answers[0] == answers[1] == answers[2]
        assert all(isinstance(v, int) for v in answers[0].values())
        with pytest.raises(LimitExceeded, match=r"max_lm_calls=4 reached: stopped after 4 LM"):
            con.query(ask + "fwd", max_lm_calls=4)
        if rt.batch_rows == 1:  # every row of the map through shared steps, many a call
            assert sum(shared_calls) == 3 * distinct + 4 and max(shared_calls) > 1
        else:
            assert not shared_calls
    finally:
        con._runtime = None  # shared by the session
        con.close()
