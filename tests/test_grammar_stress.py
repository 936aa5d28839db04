"""The grammar guarantee under stress: 2,000 generations per output type, zero invalid.

Generations run through the real runtime's decoding loop with the bundled model's
tokenizer and an adversarial random-logits decoder (tests/grammar_cases.py), over real
SemBench reviews, in two worker processes (CI has two cores). The same cases with the
real model's logits are bench/grammar_stress.py; the real model's outputs are also
checked here, on fewer rows, in test_grammar_validity.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from semql.grammar import types as T
from semql.grammar.check import violation
from semql.grammar.compile import to_xgrammar

sys.path.insert(0, str(Path(__file__).parent))
from grammar_cases import CASES, SUMMARY_SCHEMA  # noqa: E402

# 600 a type keeps the suite under 20 minutes; SEMQL_STRESS_GENERATIONS=2000 walks more
GENERATIONS = int(os.environ.get("SEMQL_STRESS_GENERATIONS", "600"))
WORKERS = 2


def _worker(part: int) -> list[dict]:
    """Every case over this worker's share of the reviews (runs in a fresh process)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from grammar_cases import RandomLogitsRuntime, reviews, stress

    from semql.executors.runtimes.model_files import default_model_path

    runtime = RandomLogitsRuntime(default_model_path(), seed=part)
    texts = reviews(GENERATIONS)[part::WORKERS]
    try:
        return [stress(runtime, out_type, question, texts) for question, out_type in CASES]
    finally:
        runtime.close()


@pytest.mark.model
def test_random_walk_generations_of_every_type_are_all_valid():
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
        parts = list(pool.map(_worker, range(WORKERS)))
    for i, (_, out_type) in enumerate(CASES):
        results = [part[i] for part in parts]
        generations = sum(r["generations"] for r in results)
        invalid = [e for r in results for e in r["examples"]]
        assert generations >= GENERATIONS, out_type
        assert sum(r["invalid"] for r in results) == 0, (str(out_type), invalid)
        if isinstance(out_type, (T.StrType, T.JsonType)) or (
            isinstance(out_type, T.ListType) and isinstance(out_type.item, T.StrType)
        ):
            # the walk went far into open text, where the length bounds are tested
            assert min(r["mean_tokens"] for r in results) > 20, (str(out_type), results)


def test_the_oracle_rejects_what_each_type_forbids():
    cases = [
        (T.BoolType(), " yes", " Yes"),
        (T.IntType(), " -12", " 012"),
        (T.FloatType(), " 0.5", " .5"),
        (T.DateType(), " 2024-02-29", " 2023-02-29"),
        (T.DateType(time=True), " 2024-02-29 23:59", " 2024-02-29 24:00"),
        (T.IntType(2, signed=False), " 99", " -1"),
        (T.FloatType(3, 1), " -999.9", " 999.95"),
        (T.OptionsType(("A", "B")), " B", " C"),
        (T.ListType(T.IntType(), 2, 2), " [1, 2]", " [1]"),
        (T.ListType(T.StrType(), 1, 3), ' ["a"]', ' ["a\tb"]'),
        (T.RegexType("[A-F][+-]?"), " B+", " G"),
        (T.StrType(), ' "a line"', ' "two\\nlines"'),
        (T.JsonType(json.dumps(SUMMARY_SCHEMA)), ' {"positive":true,"topic":"x","score":1}', ""),
    ]
    for out_type, good, bad in cases:
        assert violation(out_type, good) is None, (out_type, good)
        assert violation(out_type, bad) is not None, (out_type, bad)
        assert violation(out_type, good.lstrip()) is not None  # the answer's space
    schema = T.JsonType(json.dumps(SUMMARY_SCHEMA))
    for bad in (
        ' {"positive":1,"topic":"x","score":1}',
        ' {"positive":true,"score":1}',
        ' {"positive":true,"topic":"x","score":"1"}',
        ' {"positive":true,"topic":"x","score":1,"tags":["a","b","c","d"]}',
        ' {"positive":true,"topic":"a\tb","score":1}',
    ):
        assert violation(schema, bad) is not None, bad


def test_json_and_list_strings_admit_no_raw_control_characters():
    """Regression: xgrammar's strings with maxLength admitted tabs and other control
    characters, and so did list items; JSON forbids them unescaped. And the date grammar
    admitted year 0000, which no calendar date has."""
    from xgrammar.testing import _is_grammar_accept_string

    obj = T.JsonType(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    items = T.ListType(T.StrType(), 1, 3)
    for out_type, good, bad in (
        (obj, ' {"a":"x y"}', ' {"a":"x\ty"}'),
        (obj, ' {"a":"x y"}', ' {"a":"x\x13y"}'),
        (items, ' ["x y"]', ' ["x\ty"]'),
        (T.StrType(), ' "x y"', ' "x\ty"'),
        (T.StrType(), ' "say hi"', ' "say \\"hi\\""'),
        (T.StrType(), ' "x"', ' "x" and more'),
        (T.DateType(), " 0001-09-26", " 0000-09-26"),  # found by a random walk: no year 0
    ):
        grammar = to_xgrammar(out_type.spec())
        assert _is_grammar_accept_string(grammar, good)
        assert not _is_grammar_accept_string(grammar, bad)


def test_closing_tokens_close_what_is_open():
    """Regression: past half the budget the runtime preferred any token holding a quote,
    bracket or brace; inside a string a token like 'x]' closes nothing, and random walks
    ran out of budget with the string still open."""
    from semql.executors.runtimes.closing import ClosingTokens, inside_string

    pieces = [b"abc", b'x"', b"x]", b"}", b'\\"', b', "', b"]", b""]
    stop = np.array([False] * 7 + [True])
    closing = ClosingTokens.of(pieces, stop)
    assert closing.string_end.tolist() == [False, True, False, False, False, True, False, True]
    assert closing.bracket_end.tolist() == [False, False, True, True, False, False, True, True]
    assert inside_string(b' ["a", "b')
    assert not inside_string(b' ["a", "b"')
    assert inside_string(b' {"k": "say \\"hi')
    assert not inside_string(b' {"k": "x\\\\"')
    assert closing.after(b' "open').tolist() == closing.string_end.tolist()
    assert closing.after(b' ["done"').tolist() == closing.bracket_end.tolist()
