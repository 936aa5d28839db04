"""The text a grammar forces, decoded as a draft (executors/runtimes/forced_draft.py): it
rides in the decode before it, the model's own choice wins where it differs, and a row's
answer stays its own whatever the KV cache held."""

from __future__ import annotations

import csv
import hashlib
import random

import pytest

from semql.executors.runtimes import forced_draft, greedy
from semql.grammar import types as T
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

BALANCES = [
    ("The balance is -40 dollars.", -40),
    ("The balance is 25 dollars.", 25),
    ("The balance is -3 dollars.", -3),
]


@pytest.fixture(scope="module")
def one_row():
    """The bundled Gemma answering one row at a time (the recipe the draft belongs to)."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path

    runtime = LlamaRuntime(default_model_path(), seed=0, batch_rows=1)
    yield runtime
    runtime.close()


@pytest.fixture
def recorded(monkeypatch, one_row):
    """Per generated row: its text, its generated tokens, the decodes after its prompt's,
    and a digest of every logits vector its tokens were chosen from; and the drops."""
    rows: list[dict] = []
    drops: list[int] = []
    prefill, decode, step = one_row._prefill, one_row._decode, greedy.GreedyDecoder.step
    inside = []

    def counting_prefill(*args, **kwargs):
        inside.append(True)
        try:
            return prefill(*args, **kwargs)
        finally:
            inside.pop()

    def counting_decode(*args, **kwargs):
        if not inside:
            rows[-1]["steps"] += 1
        return decode(*args, **kwargs)

    def tracing_step(self, logits):
        rows[-1]["trace"].append(hashlib.sha256(logits.tobytes()).hexdigest())
        return step(self, logits)

    generate = forced_draft.generate

    def recording_generate(rt, *args):
        rows.append({"steps": 0, "trace": []})
        gen = generate(rt, *args)
        rows[-1].update(text=gen.text, generated=gen.generated_tokens)
        return gen

    drop = forced_draft._drop
    monkeypatch.setattr(one_row, "_prefill", counting_prefill)
    monkeypatch.setattr(one_row, "_decode", counting_decode)
    monkeypatch.setattr(greedy.GreedyDecoder, "step", tracing_step)
    monkeypatch.setattr(forced_draft, "generate", recording_generate)
    monkeypatch.setattr(forced_draft, "_drop", lambda rt, n: (drops.append(n), drop(rt, n)))
    return rows, drops


def _reviews(n: int) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        texts = list(dict.fromkeys(r["reviewText"] for r in csv.DictReader(f)))
    return random.Random(5).sample(texts, n)


@pytest.mark.model
def test_the_forced_space_rides_in_the_prompts_decode(one_row, recorded):
    """An int's grammar forces the space after the cue; taken as the model's choice, it
    costs no decode of its own: one decode fewer than the tokens generated."""
    rows, drops = recorded
    build = PromptBuilder(one_row.style, one_row.format_chat).build
    question = "How many stars from 1 to 5 would the critic give?"
    for text in _reviews(6):
        one_row.generate(build(question, T.IntType(), ["reviewText"], [text]), T.IntType())
    assert not drops
    for row in rows:
        assert row["text"].startswith(" ") and row["text"][1:].isdigit()
        assert row["steps"] == row["generated"] - 1
        assert len(row["trace"]) == row["generated"] + 1  # every token chosen from logits


@pytest.mark.model
def test_the_models_own_choice_wins_and_leaves_no_trace(one_row, recorded):
    """Where the model writes " -" instead of the drafted " ", the draft leaves the KV
    cache: the answer is negative, and this row and the next get the same logits, bit for
    bit, whether the cache held the dropped draft or nothing."""
    rows, drops = recorded
    build = PromptBuilder(one_row.style, one_row.format_chat).build
    prompts = [
        build("What is the balance?", T.IntType(), ["statement"], [text], BALANCES)
        for text in ("The balance is -12 dollars.", "The balance is 9 dollars.")
    ]
    first = [one_row.generate(p, T.IntType()).text for p in prompts]
    assert drops, "the model took the drafted space; the test needs a row that does not"
    assert int(first[0]) < 0
    base = [(r["text"], r["trace"]) for r in rows]
    for order in ([0, 0, 1], [1, 0, 1]):  # after itself, after the other row, first
        one_row._llm.reset()
        one_row._llm._ctx.kv_cache_clear()
        rows.clear()
        for i in order:
            one_row.generate(prompts[i], T.IntType())
        assert [(r["text"], r["trace"]) for r in rows] == [base[i] for i in order]
