"""Generated answers several rows to a decode (executors/runtimes/batch_generator.py) and
with their answer steps shared where rows go one at a time (shared_steps.py): a row's
answer is the same whatever rows share its decodes, in which order and how many, and a
query's answers, LM calls and caps are those of one row at a time."""

from __future__ import annotations

import csv
import random

import numpy as np
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


@pytest.fixture
def int_prompts(gemma_one_row):
    build = PromptBuilder(gemma_one_row.style, gemma_one_row.format_chat).build
    question = "How many stars from 1 to 5 would the critic give?"
    return [build(question, T.IntType(), ["reviewText"], [t]) for t in _reviews(11)]


def _first_tokens(monkeypatch) -> dict:
    """Each decoder's first chosen token, as it happens (the decoders kept alive, so none
    is taken for another)."""
    seen: dict = {}
    step_hidden = greedy.GreedyDecoder.step_hidden

    def first(self, tokens, hidden):
        token = step_hidden(self, tokens, hidden)
        seen.setdefault(self, token)
        return token

    monkeypatch.setattr(greedy.GreedyDecoder, "step_hidden", first)
    return seen


@pytest.mark.model
def test_the_prompt_decode_takes_the_grammars_all_but_fixed_first_token_along(
    gemma_one_row, int_prompts, monkeypatch
):
    """An int starts with a space the grammar all but fixes: a row that chooses it reads
    its next step from the prompt's own decode, so its answer takes one step decode fewer
    than it has tokens. A string, whose next step needs the whole vocabulary, and a closed
    set, whose first token is a label's own, look nowhere."""
    rt = gemma_one_row
    space = rt.text_tokens(b" ")
    ahead = greedy.GreedyDecoder(rt, T.IntType(), 8).lookahead()
    assert ahead == space[0]
    assert greedy.GreedyDecoder(rt, T.StrType(max_chars=60), 30).lookahead() is None  # ' "'
    assert greedy.GreedyDecoder(rt, T.IntType(), 1).lookahead() is None  # no second token
    assert greedy.GreedyDecoder(rt, T.BoolType(), 4).lookahead() is None  # " true", scored
    seen = _first_tokens(monkeypatch)
    row_steps = []
    reading = shared_steps.decode_reading
    monkeypatch.setattr(
        shared_steps,
        "decode_reading",
        lambda streams, items, reads: (
            row_steps.append(len(reads)) or reading(streams, items, reads)
        ),
    )
    gens = rt.generate_rows(int_prompts, T.IntType())
    took = sum(first == ahead for first in seen.values())
    assert took == len(int_prompts)  # every review's stars start with the space
    assert sum(row_steps) == sum(g.generated_tokens for g in gens) - took
    assert all(isinstance(T.IntType().parse(g.text), int) for g in gens)


@pytest.mark.model
def test_a_row_that_chooses_another_first_token_drops_the_looked_ahead_one(
    gemma_one_row, int_prompts, monkeypatch
):
    """Looked ahead at a token no row chooses, every row drops its cell and answers with
    its stream's positions its own: llama.cpp refuses a decode at a position held."""
    rt = gemma_one_row
    decoder = greedy.GreedyDecoder(rt, T.IntType(), 8)
    right = decoder.lookahead()
    allowed = [int(t) for t in np.flatnonzero(decoder._allowed()) if t != right]
    monkeypatch.setattr(greedy.GreedyDecoder, "lookahead", lambda self: allowed[0])
    seen = _first_tokens(monkeypatch)
    gens = rt.generate_rows(int_prompts, T.IntType())
    assert len(seen) == len(int_prompts) and allowed[0] not in seen.values()
    assert all(isinstance(T.IntType().parse(g.text), int) for g in gens)
