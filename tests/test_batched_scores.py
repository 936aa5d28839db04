"""Closed-set rows scored several to a decode (executors/runtimes/batch_scorer.py): a row's
label scores are the same bits whatever rows share its decodes, and the executor's
answers, counts and caps are those of one row at a time. One row at a time, a row's scores
are the same bits whatever the KV cache held before it. A label set with a label of
several tokens is scored one row at a time on a batched runtime too."""

from __future__ import annotations

import csv
import random

import llama_cpp
import pytest

import semql
from semql.errors import LimitExceeded, ModelError
from semql.executors.runtimes import greedy
from semql.executors.runtimes.batch_scorer import CHUNK, STREAM_CELLS, streams_of
from semql.executors.runtimes.cpu_backend import BATCH_ROWS, default_batch_rows
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.executors.runtimes.model_files import default_model_path
from semql.grammar import types as T
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

# one label token, and labels of two and three tokens, one inside another's first token
CLOSED_SETS = pytest.mark.parametrize(
    "out_type",
    [T.BoolType(), T.OptionsType(("thrilling adventure", "quiet drama", "quiet family drama"))],
    ids=["bool", "multi-token options"],
)


def _reviews(n: int) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        texts = list(dict.fromkeys(r["reviewText"] for r in csv.DictReader(f)))
    return random.Random(3).sample(texts, n)


@pytest.mark.model
@CLOSED_SETS
def test_a_rows_scores_do_not_depend_on_its_batch_mates(gemma_batched, out_type):
    rt = gemma_batched
    assert rt.batch_rows > 1
    build = PromptBuilder(rt.style, rt.format_chat).build
    texts = _reviews(21)
    prompts = [build("Is the review positive?", out_type, ["reviewText"], [t]) for t in texts]
    base = [s.logprobs for s in rt.score_many(prompts, out_type)]
    order = list(range(len(prompts)))
    random.Random(5).shuffle(order)
    got = {}
    for part in (order[:4], order[4:]):  # another order, a batch of 4 and one of 17
        scored = rt.score_many([prompts[i] for i in part], out_type)
        got.update((i, s.logprobs) for i, s in zip(part, scored, strict=True))
    assert [got[i] for i in range(len(prompts))] == base  # bit for bit
    for i in order[:3]:  # alone: seven idle streams beside it
        assert rt.score(prompts[i], out_type).logprobs == base[i]


@pytest.mark.model
def test_labels_of_several_tokens_go_one_row_at_a_time_on_a_batched_runtime(
    gemma_batched, gemma_one_row
):
    """Their later tokens would be pieces padded to 16 in the streams; one row at a time
    decodes them together in one decode. So a batched runtime gives such a label set the
    one-row recipe's numbers bit for bit, while a label set of one token a label keeps
    its batched numbers (which differ from one row's in some rows: other decode shapes)."""
    build = PromptBuilder(gemma_batched.style, gemma_batched.format_chat).build
    texts = _reviews(12)
    for out_type, same in (
        (T.OptionsType(("thrilling adventure", "quiet drama", "quiet family drama")), True),
        (T.OptionsType(("positive", "negative", "mixed")), False),
    ):
        prompts = [build("What kind of film?", out_type, ["reviewText"], [t]) for t in texts]
        batched = [s.logprobs for s in gemma_batched.score_many(prompts, out_type)]
        one_row = [s.logprobs for s in gemma_one_row.score_many(prompts, out_type)]
        assert (batched == one_row) is same


@pytest.mark.model
@CLOSED_SETS
def test_a_rows_scores_one_at_a_time_do_not_depend_on_the_row_before(gemma_one_row, out_type):
    """The one-row recipe reuses the previous prompt's KV cache chunk by chunk, with chunks
    fixed by the prompt itself: the same bits in another order and from an empty cache."""
    rt = gemma_one_row
    build = PromptBuilder(rt.style, rt.format_chat).build
    opening = "Of all the films this year, this one left me thinking for days:"
    texts = [f"{opening} {r}" for r in _reviews(8)] + _reviews(4)  # rows sharing words
    prompts = [build("Is the review positive?", out_type, ["reviewText"], [t]) for t in texts]
    base = [s.logprobs for s in rt.score_many(prompts, out_type)]
    order = list(range(len(prompts)))
    random.Random(9).shuffle(order)
    shuffled = dict(zip(order, rt.score_many([prompts[i] for i in order], out_type), strict=True))
    assert [shuffled[i].logprobs for i in range(len(prompts))] == base  # bit for bit
    for i in order[:3]:  # alone, from an empty cache
        rt.empty_cache()
        assert rt.score(prompts[i], out_type).logprobs == base[i]


@pytest.mark.model
def test_streams_hold_a_fixed_size_and_a_longer_row_goes_one_row_at_a_time(gemma_one_row):
    """The batched context's KV cells are allocated up front, so its streams hold
    STREAM_CELLS whatever the model's context (streams of the whole context grew with it);
    a prompt too long for one is scored and generated one row at a time in the runtime's
    own context: the one-row recipe's numbers bit for bit, its mates' unchanged."""
    rt = LlamaRuntime(default_model_path(), seed=0, n_ctx=4096, batch_rows=2)
    try:
        build = PromptBuilder(rt.style, rt.format_chat).build
        texts = _reviews(43)
        long_text = " ".join(texts[:40])
        for out_type in (T.BoolType(), T.IntType()):
            prompts = [  # fields uncut, as a caller lifting the field limit gets them
                build("Is the review positive?", out_type, ["reviewText"], [t], max_chars=None)
                for t in (long_text, *texts[40:])
            ]
            assert STREAM_CELLS < len(rt.tokenize(prompts[0])) < gemma_one_row.n_ctx
            with greedy.recording() as made:
                if out_type == T.BoolType():
                    got = [s.logprobs for s in rt.score_many(prompts, out_type)]
                    alone = [gemma_one_row.score(p, out_type).logprobs for p in prompts]
                else:
                    got = [g.text for g in rt.generate_many(prompts, out_type)]
                    alone = [gemma_one_row.generate(p, out_type).text for p in prompts]
            assert got[0] == alone[0]
            if made:  # generated: every logits vector the long row chose from, too
                assert made[0].trace == made[len(prompts)].trace
        streams = streams_of(rt)
        assert streams.n_ctx == STREAM_CELLS - CHUNK
        assert llama_cpp.llama_n_ctx(streams.ctx) == STREAM_CELLS * (streams.slots + 1)
    finally:
        rt.close()


@pytest.mark.model
def test_batched_maps_answer_as_rows_one_at_a_time_and_caps_hold(gemma_batched):
    """The same rows asked in table order, in reverse order and by the optimized plan
    (cut into other batches each time) get the same answers, one LM call per distinct
    row; max_lm_calls stops a batched map exactly at its cap."""
    con = semql.connect(runtime=gemma_batched, cache=False)
    try:
        semql.load_sample(con)
        rows = "SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId"
        con.query(f"CREATE TABLE fwd AS {rows} LIMIT 19")
        con.query("CREATE TABLE bwd AS SELECT * FROM fwd ORDER BY reviewId DESC")
        distinct = con.query("SELECT count(DISTINCT reviewText) AS n FROM fwd").item()
        ask = "SELECT reviewId, {{LLMMap('Is the review positive?', reviewText)}} AS p FROM "
        answers = []
        for table, optimize in (("fwd", False), ("bwd", False), ("fwd", True)):
            answers.append(dict(con.query(ask + table, optimize=optimize).iter_rows()))
            assert con.stats.lm_calls == distinct
        assert answers[0] == answers[1] == answers[2]
        with pytest.raises(LimitExceeded, match=r"max_lm_calls=5 reached: stopped after 5 LM"):
            con.query(ask + "fwd", max_lm_calls=5)
    finally:
        con._runtime = None  # shared by the session
        con.close()


@pytest.mark.model
def test_rows_per_decode_default_follows_the_cpu(gemma_runtime):
    """Batched decodes where they were measured faster (a Xeon with AMX), one row at a
    time elsewhere (an AVX2 EPYC: 84% -> 65% of the prefill limit batched; an AVX-512
    EPYC without AMX: 74% -> 61%); the runtime a connection opens without batch_rows takes
    this CPU's default and says why."""
    assert default_batch_rows({"avx2", "avx512f", "amx_tile"})[0] == BATCH_ROWS
    assert default_batch_rows({"avx2", "avx512f", "avx512_vnni"})[0] == 1
    assert default_batch_rows({"avx2", "fma"})[0] == 1
    assert (gemma_runtime.batch_rows, gemma_runtime.batch_rows_reason) == default_batch_rows()
    with semql.connect(cache=False) as con:
        assert con.runtime.batch_rows == default_batch_rows()[0]


def test_batch_rows_must_be_a_whole_number_at_least_one():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ModelError, match="batch_rows must be a whole number >= 1"):
            LlamaRuntime("model.gguf", batch_rows=bad)
