"""Constrained generation with the real model: every output valid, fast path exact."""

from __future__ import annotations

import csv
import json
import re

import pytest

from semql.grammar import types as T
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

pytestmark = pytest.mark.model

ROWS = 8  # x 10 types: 80 generations on real reviews
CASES = [
    ("Is this review positive?", T.BoolType()),
    ("What is the sentiment?", T.OptionsType(("POSITIVE", "NEGATIVE", "MIXED"))),
    ("How many stars, 1 to 5?", T.IntType()),
    ("Rate it from 0 to 1.", T.FloatType()),
    ("When might this have been written?", T.DateType()),
    ("Name up to three people or things mentioned.", T.ListType(T.StrType(), 1, 3)),
    ("Give two scores.", T.ListType(T.IntType(), 2, 2)),
    (
        "Summarise as JSON.",
        T.JsonType(
            json.dumps(
                {
                    "type": "object",
                    "properties": {
                        "positive": {"type": "boolean"},
                        "topic": {"type": "string"},
                        "score": {"type": "number"},
                    },
                    "required": ["positive", "topic", "score"],
                }
            )
        ),
    ),
    ("Grade the review.", T.RegexType("[A-F][+-]?")),
    ("Who is the critic talking about?", T.StrType()),
]
CHECKS = {
    "int": re.compile(r"^ -?(0|[1-9][0-9]*)$"),
    "float": re.compile(r"^ -?(0|[1-9][0-9]*)(\.[0-9]+)?$"),
    "date": re.compile(r"^ [0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    "regex": re.compile(r"^ [A-F][+-]?$"),
}


def reviews(n: int) -> list[str]:
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return [r["reviewText"] for r in csv.DictReader(f)][:n]


def test_constrained_generations_on_real_reviews_are_all_valid(gemma_runtime):
    builder = PromptBuilder(gemma_runtime.style)
    texts = reviews(ROWS)
    count = 0
    for question, out_type in CASES:
        for text in texts:
            gen = gemma_runtime.generate(
                builder.build(question, out_type, ["review"], [text]), out_type
            )
            value = out_type.parse(gen.text)  # raises on anything the grammar should forbid
            assert gen.text.startswith(" ")
            if out_type.name in CHECKS:
                assert CHECKS[out_type.name].match(gen.text), (out_type, gen.text)
            if isinstance(out_type, T.OptionsType):
                assert value in out_type.values
            if isinstance(out_type, T.ListType):
                assert out_type.min_items <= len(value) <= out_type.max_items
            if isinstance(out_type, T.JsonType):
                obj = json.loads(value)
                assert isinstance(obj["positive"], bool) and isinstance(obj["topic"], str)
                assert isinstance(obj["score"], (int, float))
            if isinstance(out_type, T.StrType):
                assert value and "\n" not in value
            count += 1
    assert count == ROWS * len(CASES)


@pytest.mark.parametrize(
    "out_type",
    [
        T.BoolType(),
        T.OptionsType(("POSITIVE", "NEGATIVE")),
        T.OptionsType((1, 2, 3, 4, 5)),
        T.OptionsType(("very good", "very bad", "mixed")),  # labels sharing a first token
    ],
    ids=str,
)
def test_closed_set_fast_path_equals_greedy_constrained_decoding(gemma_runtime, out_type):
    builder = PromptBuilder(gemma_runtime.style)
    prompts = [
        builder.build("What does the critic think?", out_type, ["review"], [t]) for t in reviews(16)
    ]
    answers = {}
    try:
        for fast in (False, True):
            gemma_runtime.closed_set_fast_path = fast
            gens = [gemma_runtime.generate(p, out_type) for p in prompts]
            answers[fast] = [out_type.parse(g.text) for g in gens]
            if fast:
                fast_tokens = sum(g.generated_tokens for g in gens)
            else:
                full_tokens = sum(g.generated_tokens for g in gens)
    finally:
        gemma_runtime.closed_set_fast_path = True
    assert answers[True] == answers[False]
    assert fast_tokens <= full_tokens
