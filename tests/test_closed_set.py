"""Closed-set answers from whole-label probabilities, calibration, expected values, and
the warning for answers that are (nearly) constant."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sampled_rows import SAMPLE_ROWS

import semql
from semql.dialect import parse
from semql.executors.lm import closed_set
from semql.executors.lm.stats import OperatorStats
from semql.grammar import types as T
from semql.grammar.inference import infer_type
from semql.planner.calls import is_lm_call


def test_calibration_divides_by_the_content_free_prior():
    bool_type = T.BoolType()
    probs = np.array([0.7, 0.3])  # yes, no
    off = closed_set.Prior("off", None)
    assert closed_set.answer_value(bool_type, probs, off) is True
    # The model says "yes" with 0.9 to an empty review: 0.7 is less than its habit.
    prior = closed_set.Prior("content_free", (0.9, 0.1))
    assert closed_set.answer_value(bool_type, probs, prior) is False
    assert np.allclose(prior.calibrate(np.array([0.9, 0.1])), [0.5, 0.5])


def test_expected_value_of_a_scale():
    scale = T.OptionsType((1, 2, 3, 4, 5), expected=True)
    probs = np.array([0.5, 0.0, 0.0, 0.0, 0.5])
    value = closed_set.answer_value(scale, probs, closed_set.Prior("off", None))
    assert value == pytest.approx(3.0) and isinstance(value, float)
    assert scale.duckdb_type == "DOUBLE"
    plain = T.OptionsType((1, 2, 3, 4, 5))
    assert closed_set.answer_value(plain, probs, closed_set.Prior("off", None)) in (1, 5)
    assert plain.duckdb_type == "BIGINT" and plain.spec() == scale.spec()


def test_the_probability_of_yes_is_the_calibrated_one_and_decides_as_the_bool_would():
    prior = closed_set.Prior("table", (0.8, 0.2), 32)  # the model leans to yes
    chance = T.BoolType(expected=True)
    for probs in (np.array([0.9, 0.1]), np.array([0.7, 0.3]), np.array([0.5, 0.5])):
        p = closed_set.answer_value(chance, probs, prior)
        assert isinstance(p, float) and p == pytest.approx(prior.calibrate(probs)[0])
        assert (p > 0.5) == closed_set.answer_value(T.BoolType(), probs, prior)
    assert closed_set.confidence(chance, np.array([0.9, 0.1]), prior) is None  # a number
    assert chance.spec() == T.BoolType().spec() and chance.hint() == T.BoolType().hint()


SCALE = {"options": (1, 2, 3)}


@pytest.mark.parametrize(
    "sql, kwargs, expected",
    [
        ("SELECT avg(LLMMap('q', x)) FROM t", SCALE, True),
        ("SELECT x FROM t ORDER BY LLMMap('q', x)", SCALE, True),
        ("SELECT LLMMap('q', x) + 1 FROM t", SCALE, True),
        ("SELECT LLMMap('q', x) AS s FROM t", SCALE, False),
        ("SELECT * FROM t WHERE LLMMap('q', x) = 2", SCALE, False),
        ("SELECT * FROM t WHERE LLMMap('q', x) = 'a'", {"options": ("a", "b")}, False),
    ],
)
def test_a_numeric_scale_where_sql_wants_a_number_is_its_expected_value(sql, kwargs, expected):
    call = next(n for n in parse(sql).walk() if is_lm_call(n))
    typed = infer_type(call, kwargs, lambda c: None, "f").type
    assert isinstance(typed, T.OptionsType)
    assert typed.expected is expected


def test_constant_answers_are_reported():
    op = OperatorStats("LMMap LLMMap('q', x)")
    op.answer_counts.update({"True": 58, "False": 2})
    assert "58 of 60" in op.uninformative()
    op.answer_counts.update({"False": 10})
    assert op.uninformative() is None
    few = OperatorStats("x")
    few.answer_counts.update({"True": 10})
    assert few.uninformative() is None  # too few inputs to say


def test_bad_calibration_is_a_clear_error(sample_con):
    with pytest.raises(semql.BindError, match="calibration"):
        sample_con.plan(
            "SELECT LLMMap('Is it good?', reviewText, calibration='magic') FROM Reviews"
        )
    with pytest.raises(TypeError, match="calibration"):
        semql.connect(calibration="magic")


@pytest.mark.model
def test_scores_are_whole_label_log_probabilities(gemma_runtime):
    """Up to the prompt's log-normaliser, which all labels share (the first token's logit
    stands for its log-probability): checked exactly in the multi-token test below."""
    from semql.planner.physical.prompt_format import PromptBuilder

    builder = PromptBuilder(gemma_runtime.style, gemma_runtime.format_chat)
    for out_type in (
        T.BoolType(),
        T.OptionsType(("positive", "negative")),
        T.OptionsType(("thrilling adventure", "quiet drama", "thrilling comedy")),
    ):
        prompt = builder.build("What is it?", out_type, ["reviewText"], ["A fine film."])
        scored = gemma_runtime.score(prompt, out_type)
        assert len(scored.logprobs) == len(out_type.labels())
        assert all(np.isfinite(lp) for lp in scored.logprobs)
        again = gemma_runtime.score(prompt, out_type)  # the KV cache holds the prompt now
        assert again.logprobs == scored.logprobs  # identical numerics on reuse
    # multi-token labels took extra single-token steps, shared prefixes scored once
    assert scored.extra_steps >= 2


@pytest.mark.model
def test_calibrated_answers_are_not_constant_without_examples(gemma_runtime):
    """Greedy, the bundled base model called 108 of taken_3's 120 reviews positive
    (SemBench's labels: 14). Calibrated, the split must follow the reviews."""
    sql = (
        "SELECT {{LLMMap('What is the sentiment of this review?', reviewText,"
        " options=('positive', 'negative'))}} AS s, count(*) AS n "
        "FROM Reviews WHERE id = 'taken_3' GROUP BY s"
    )
    # the result cache (in memory) keeps the rows' label scores: the uncalibrated query
    # reads the very scores the calibrated one decided from
    con = semql.connect(runtime=gemma_runtime, calibration_rows=SAMPLE_ROWS)
    try:
        semql.load_sample(con)
        calibrated = dict(con.query(sql).iter_rows())
        raw = dict(con.query(sql, calibration="off").iter_rows())
        assert con.stats.lm_calls == 0  # every score from the cache
    finally:
        con._runtime = None  # shared by the session
        con.close()
    assert sum(calibrated.values()) == sum(raw.values()) == 120
    assert calibrated.get("positive", 0) < raw.get("positive", 0)
    assert 5 <= calibrated.get("positive", 0) <= 60


def test_explain_names_the_calibration(sample_con):
    sql = "SELECT LLMMap('Is it good?', reviewText{}) AS g FROM Reviews"
    assert "calibration table" in sample_con.explain(sql.format(""))
    assert "calibration content_free" in sample_con.explain(
        sql.format(", calibration='content_free'")
    )
    assert "calibration batch" in sample_con.explain(sql.format(", calibration='batch'"))
    assert "calibration off" in sample_con.explain(sql.format(", calibration='off'"))
    assert "calibration off" in sample_con.explain(sql.format(""), calibration="off")


@pytest.mark.model
def test_a_yes_no_call_summed_is_the_expected_count_of_its_decisions(model_con):
    """In a number's place the call answers its calibrated probability of yes: the same
    scores and prior as the decision beside it, which is yes exactly where it is over 0.5,
    and SUM adds them up (an expected count)."""
    rows = "(SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 12) AS r"
    call = "{{LLMMap('Is the review positive?', reviewText)}}"
    ask = f"SELECT reviewId, {{}} FROM {rows} ORDER BY reviewId"
    both = model_con.query(ask.format(f"{call} AS yes")).join(
        model_con.query(ask.format(f"{call} + 0 AS p")), on="reviewId"
    )
    assert both.schema["yes"] == pl.Boolean and both.schema["p"] == pl.Float64
    assert all(0.0 <= p <= 1.0 for p in both["p"]) and both["p"].n_unique() > 1
    assert both["yes"].to_list() == [p > 0.5 for p in both["p"]]
    expected = model_con.query(f"SELECT sum({call}) AS n FROM {rows}")["n"].item()
    assert expected == pytest.approx(both["p"].sum())
    assert "probability of yes [DOUBLE]" in model_con.explain(f"SELECT sum({call}) FROM {rows}")
    # in one query, each use reads its own way: the decision, the probability, a count
    # of decisions and an expected count beside each other, as each alone
    one = model_con.query(ask.format(f"{call} AS yes, {call} + 0 AS p"))
    assert one.select("reviewId", "yes", "p").equals(both.select("reviewId", "yes", "p"))
    counts = model_con.query(
        f"SELECT sum({call}) AS n, count(*) FILTER (WHERE {call}) AS k FROM {rows}"
    )
    assert counts["n"].item() == pytest.approx(expected)
    assert counts["k"].item() == sum(both["yes"])


@pytest.mark.model
def test_a_constant_answer_is_reported_to_the_user(model_con):
    """Uncalibrated and without examples, the bundled base model says yes to nearly
    every review; the result must say so, in stats and in the REPL."""
    import io

    from semql.shell import Shell

    out, err = io.StringIO(), io.StringIO()
    shell = Shell(model_con, mode="csv", out=out, err=err)
    sql = (
        "SELECT count(*) AS n FROM (SELECT * FROM Reviews WHERE id = 'taken_3' "
        "ORDER BY reviewId LIMIT 40) WHERE "
        "{{LLMMap('Is this a review of a horror movie?', reviewText, calibration='off')}};"
    )
    assert shell.run_text(sql, stop_on_error=True)
    assert model_con.stats.warnings and "distinct inputs" in model_con.stats.warnings[0]
    assert "warning:" in err.getvalue() and "the same answer" in err.getvalue()


@pytest.mark.model
def test_a_multi_token_label_scores_the_sum_of_its_tokens(monkeypatch):
    """A label's score is logit(t1 | prompt) + log p(t2 | prompt t1) + ..., each step
    computed afresh: the prompt prefilled from an empty cache with the full output layer,
    then the label's tokens one a decode. With one label prefix a decode the one-row
    recipe decodes exactly that, so the labels' probabilities are those of their
    log-probabilities (test_label_prefixes_decoded_together_are_those_decoded_apart
    checks the prefixes decoded together; test_batched_scores.py the batched recipe)."""
    from semql.executors.runtimes import label_scores
    from semql.executors.runtimes.label_scores import log_probs
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path
    from semql.planner.physical.prompt_format import PromptBuilder

    monkeypatch.setattr(label_scores, "BRANCH_SEQS", 1)
    rt = LlamaRuntime(default_model_path(), batch_rows=1)
    out_type = T.OptionsType(("thrilling adventure", "quiet drama"))
    prompt = PromptBuilder(rt.style, rt.format_chat).build(
        "What kind of film is it?", out_type, ["reviewText"], ["Chases, explosions, a heist."]
    )
    scored = rt.score(prompt, out_type)
    tokens, segments = rt.tokenize_segments(prompt)
    assert rt.head is not None  # the first tokens' logits come from the output head
    true_logprobs = []
    for label, got in zip(out_type.labels(), scored.logprobs, strict=True):
        label_tokens = rt.label_tokens(label)
        expected, logprob = 0.0, 0.0
        rt.empty_cache()
        with rt._lock:  # from an empty cache: the prompt, then the label token by token
            rt._prefill(tokens, segments)
            for k, token in enumerate(label_tokens):
                if k:
                    rt._decode([label_tokens[k - 1]], logits=True)
                logits = rt._logits()
                expected += float(logits[token] if k == 0 else log_probs(logits, [token])[token])
                logprob += log_probs(logits, [token])[token]
        assert got == pytest.approx(expected, abs=1e-3)
        true_logprobs.append(logprob)
    assert closed_set.probabilities(scored.logprobs) == pytest.approx(
        closed_set.probabilities(true_logprobs), abs=1e-6
    )
    rt.close()


@pytest.mark.model
def test_label_prefixes_decoded_together_are_those_decoded_apart(monkeypatch, gemma_one_row):
    """One row at a time, a label set's prefixes go in one decode, each its own sequence
    sharing the row's cells and a shared first token one cell of several sequences. The
    scores are those of one prefix a decode up to the numerics of a wider decode (which
    moved scores by at most 0.09 over 48 rows and 6 labels; a branch that missed the
    row's cells, or a label token its own first token, moves them by nats)."""
    from semql.executors.runtimes import label_scores
    from semql.planner.physical.prompt_format import PromptBuilder

    rt = gemma_one_row
    labels = ("thrilling adventure", "quiet drama", "quiet family drama", "documentary")
    out_type = T.OptionsType(labels)
    seqs = [rt.label_tokens(label) for label in labels]
    assert len(seqs[2]) == 3 and seqs[1][0] == seqs[2][0]  # a prefix inside another's
    build = PromptBuilder(rt.style, rt.format_chat).build
    texts = ["Chases, explosions, a heist.", "A slow, tender film about a family.", "Meh."]
    prompts = [build("What kind of film is it?", out_type, ["reviewText"], [t]) for t in texts]
    together = [s.logprobs for s in rt.score_many(prompts, out_type)]
    assert all(s.extra_steps == 3 for s in rt.score_many(prompts, out_type))
    monkeypatch.setattr(label_scores, "BRANCH_SEQS", 1)
    apart = [s.logprobs for s in rt.score_many(prompts, out_type)]
    assert together != apart  # another decode shape: other numerics
    for a, b in zip(together, apart, strict=True):
        assert a == pytest.approx(b, abs=0.2)


@pytest.mark.model
def test_label_tokens_of_a_prompt_near_the_context_end_are_scored():
    """A prompt within a few tokens of the context's end leaves fewer free cells than a
    label set's tokens together need: its prefixes go in more, smaller decodes (the
    longest label always fits, or the prompt is refused before any decode)."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path
    from semql.planner.physical.prompt_format import PromptBuilder

    rt = LlamaRuntime(default_model_path(), n_ctx=256, batch_rows=1)
    labels = ("thrilling adventure", "quiet drama", "quiet family drama", "romantic comedy")
    out_type = T.OptionsType(labels)
    seqs = [rt.label_tokens(label) for label in labels]
    nodes = {tuple(q[:k]) for q in seqs for k in range(1, len(q))}
    longest = max(len(q) for q in seqs)
    build = PromptBuilder(rt.style, rt.format_chat).build
    words = "a long and winding story".split()
    text, prompt = "", ""
    while True:  # the longest review whose prompt still leaves room for the longest label
        longer = f"{text} {words[len(text.split()) % len(words)]}".strip()
        candidate = build("What kind of film is it?", out_type, ["reviewText"], [longer])
        if len(rt.tokenize_segments(candidate)[0]) + longest > rt.n_ctx:
            break
        text, prompt = longer, candidate
    free = rt.n_ctx - len(rt.tokenize_segments(prompt)[0])
    assert free < len(nodes)  # the prefixes' tokens would not fit in one decode
    scored = rt.score(prompt, out_type)
    assert len(scored.logprobs) == len(labels) and all(np.isfinite(scored.logprobs))
    rt.close()
