"""The output head: a closed set's first-token logits without the vocabulary's output layer
(executors/runtimes/output_head.py), on the bundled model through llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest

from semql.errors import ModelError
from semql.executors.lm import closed_set
from semql.executors.runtimes import output_head
from semql.executors.runtimes.gguf_index import tensor_index
from semql.grammar import types as T

PROMPTS = (
    "Review: A wonderful film, I loved every minute.\nIs this review positive? Answer:",
    "Review: Dull, long and badly acted.\nWhat is its sentiment? Answer:",
    "Question: How many stars out of five? Answer:",
)


@pytest.mark.model
def test_the_heads_logits_are_the_full_layers(gemma_one_row):
    """Every token's logit from the head matches llama.cpp's own output layer (ggml's dot
    product for the weight's type on the same quantized hidden state), here on 4,096
    tokens spread over the vocabulary and each prompt's top 32."""
    rt = gemma_one_row
    assert rt.head is not None, rt.head_reason
    for text in PROMPTS:
        full, hidden = output_head.full_and_hidden(rt, text)
        tokens = sorted(
            {*np.linspace(0, rt.n_vocab - 1, 4096).astype(int), *np.argsort(-full)[:32]}
        )
        got = rt.head.logits(hidden, tokens)
        assert np.max(np.abs(got - full[tokens])) <= output_head.CHECK_TOLERANCE
        assert int(np.argmax(got)) == int(np.argmax(full[tokens]))


@pytest.mark.model
def test_a_decode_stopped_at_the_final_norm_leaves_the_cache_whole(gemma_one_row):
    """What follows a tapped decode is computed exactly as after a full one: every layer
    wrote its keys and values before the final norm."""
    rt = gemma_one_row
    tokens = rt.tokenize(PROMPTS[0])
    after = []
    for hidden in (False, True):
        with rt._lock:
            rt._clear_cache()
            rt._prefill(tokens, hidden=hidden)
            rt._decode(rt.tokenize(" yes")[-1:], logits=True)
            after.append(rt._logits().copy())
    rt.empty_cache()
    assert np.array_equal(after[0], after[1])


@pytest.mark.model
def test_scores_with_the_head_give_the_full_layers_probabilities(gemma_one_row):
    rt = gemma_one_row
    from semql.planner.physical.prompt_format import PromptBuilder

    builder = PromptBuilder(rt.style, rt.format_chat)
    head = rt.head
    for out_type in (T.BoolType(), T.OptionsType(("thrilling adventure", "quiet drama"))):
        for text in ("A fine film.", "Explosions and a car chase.", "Dreadful."):
            prompt = builder.build("What is it?", out_type, ["reviewText"], [text])
            rt.empty_cache()
            with_head = rt.score(prompt, out_type)
            rt.head = None
            try:
                rt.empty_cache()
                without = rt.score(prompt, out_type)
            finally:
                rt.head = head
            assert with_head.logprobs == pytest.approx(without.logprobs, abs=1e-3)
            assert closed_set.probabilities(with_head.logprobs) == pytest.approx(
                closed_set.probabilities(without.logprobs), abs=1e-4
            )


@pytest.mark.model
def test_a_model_with_more_after_its_final_norm_keeps_the_full_layer(gemma_one_row):
    """A soft-cap or scale after the final norm (Gemma 2, Cohere) makes the head's logits
    wrong; the load-time check refuses them and says why."""
    rt = gemma_one_row
    full, hidden = output_head.full_and_hidden(rt, PROMPTS[1])
    assert output_head.check(rt.head, full, hidden) is None
    capped = 30.0 * np.tanh(full / 30.0)  # Gemma 2's final soft-cap
    assert "differ" in output_head.check(rt.head, capped, hidden)
    assert "differ" in output_head.check(rt.head, full * 1.01, hidden)


def test_the_gguf_index_finds_the_output_matrix_and_refuses_other_files(tmp_path):
    from semql.executors.runtimes.model_files import default_model_path

    index = tensor_index(default_model_path())
    info = index.get("output.weight") or index["token_embd.weight"]
    assert info.dims[0] == 640 and info.dims[1] == 262144  # Gemma 3 270M: width, vocabulary
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"NOPE" + bytes(40))
    with pytest.raises(ModelError, match="not a GGUF"):
        tensor_index(str(bad))
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(open(default_model_path(), "rb").read(4096))
    with pytest.raises(ModelError, match="truncated"):
        tensor_index(str(cut))


@pytest.mark.model
def test_generated_ints_are_the_same_with_the_head(gemma_one_row):
    """An int's first answer step (digits only: it cannot end there) computes only its
    allowed tokens' logits, in a map's shared steps and for a row alone; the answers are
    those of the full layer, and the steps' logits vectors show the head was used."""
    from semql.executors.runtimes import greedy
    from semql.planner.physical.prompt_format import PromptBuilder

    rt = gemma_one_row
    out_type = T.IntType()
    builder = PromptBuilder(rt.style, rt.format_chat)
    texts = ["Two stars at most.", "A perfect ten.", "Five out of ten, fine.", "Awful: one."]
    prompts = [builder.build("How many stars?", out_type, ["reviewText"], [t]) for t in texts]
    head = rt.head
    runs = {}
    for name in ("head", "full"):
        rt.head = head if name == "head" else None
        try:
            with greedy.recording() as made:
                rows = [g.text for g in rt.generate_rows(prompts, out_type)]
                alone = []
                for p in prompts:
                    rt.empty_cache()
                    alone.append(rt.generate(p, out_type).text)
        finally:
            rt.head = head
        runs[name] = (rows, alone, [d.trace[0] for d in made])
    assert runs["head"][0] == runs["full"][0] and runs["head"][1] == runs["full"][1]
    assert all(a != b for a, b in zip(runs["head"][2], runs["full"][2], strict=True))


@pytest.mark.model
def test_batched_rows_with_the_head_give_the_full_layers_probabilities(gemma_batched):
    """Batched, labels of one token stop every decode at the final norm; the rows' label
    probabilities are those of the whole layer's logits."""
    from semql.executors.runtimes.batch_scorer import streams_of
    from semql.planner.physical.prompt_format import PromptBuilder

    rt = gemma_batched
    out_type = T.OptionsType(("positive", "negative"))
    builder = PromptBuilder(rt.style, rt.format_chat)
    texts = ["A fine film.", "Dreadful.", "Not bad at all.", "I walked out.", "Lovely."]
    prompts = [builder.build("Sentiment?", out_type, ["reviewText"], [t]) for t in texts]
    streams = streams_of(rt)
    assert streams.out_head is not None
    with_head = rt.score_many(prompts, out_type)
    streams.out_head = None
    try:
        without = rt.score_many(prompts, out_type)
    finally:
        streams.out_head = rt.head
    for a, b in zip(with_head, without, strict=True):
        assert closed_set.probabilities(a.logprobs) == pytest.approx(
            closed_set.probabilities(b.logprobs), abs=1e-4
        )


@pytest.mark.model
def test_a_graph_without_the_final_norm_node_keeps_the_full_layer(monkeypatch):
    """An architecture whose graph names no ``result_norm`` loads with the full layer and
    says why, and its first scores come from a cache the failed probe left empty."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path
    from semql.planner.physical.prompt_format import PromptBuilder

    monkeypatch.setattr(output_head, "TAP_NODE", b"no_such_nod\0")
    rt = LlamaRuntime(default_model_path(), batch_rows=1)
    try:
        assert rt.head is None and "final-norm" in rt.head_reason
        assert rt._llm.n_tokens == 0
        prompt = PromptBuilder(rt.style, rt.format_chat).build(
            "Is it positive?", T.BoolType(), ["reviewText"], ["Lovely."]
        )
        assert rt.score(prompt, T.BoolType()).cached_tokens == 0
    finally:
        rt.close()


@pytest.mark.model
def test_batched_ints_are_the_same_with_the_head(gemma_batched):
    """Batched generation: a decode whose outputs no row reads stops at the final norm, and
    a step whose allowed tokens are few computes only theirs; the answers are those of the
    whole layer in every decode, and the first step's logits show the head was used."""
    from semql.executors.runtimes import greedy
    from semql.executors.runtimes.batch_scorer import streams_of
    from semql.planner.physical.prompt_format import PromptBuilder

    rt = gemma_batched
    out_type = T.IntType()
    builder = PromptBuilder(rt.style, rt.format_chat)
    texts = ["Two stars at most.", "A perfect ten, " * 4, "Five out of ten.", "Awful: one."]
    prompts = [builder.build("How many stars?", out_type, ["reviewText"], [t]) for t in texts]
    streams = streams_of(rt)
    head, tap = rt.head, streams.tap
    runs = {}
    for name in ("head", "full"):
        rt.head, streams.tap = (head, tap) if name == "head" else (None, None)
        try:
            with greedy.recording() as made:
                texts_out = [g.text for g in rt.generate_many(prompts, out_type)]
        finally:
            rt.head, streams.tap = head, tap
        runs[name] = (texts_out, [d.trace[0] for d in made])
    assert runs["head"][0] == runs["full"][0]
    assert all(a != b for a, b in zip(runs["head"][1], runs["full"][1], strict=True))
