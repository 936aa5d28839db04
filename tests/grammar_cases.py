"""Output types and questions for the grammar-guarantee tests and bench/grammar_stress.py.

Also the adversarial decoder: the real runtime's decoding loop and the real model's
tokenizer, with random logits in place of the model. Greedy decoding of a real model
walks the few paths a model likes; random logits walk anywhere the grammar mask lets
them (odd tokens, long strings, the token budget's edge), so the mask alone has to keep
every output valid. It is a test double for the grammar layer only, never for answers.
"""

from __future__ import annotations

import csv
import json

import numpy as np

from semql.errors import SemQLError
from semql.executors.runtimes.llama_runtime import LlamaRuntime
from semql.grammar import types as T
from semql.grammar.check import violation
from semql.planner.physical.prompt_format import PromptBuilder
from semql.sample import sample_dir

SUMMARY_SCHEMA = {
    "type": "object",
    "properties": {
        "positive": {"type": "boolean"},
        "topic": {"type": "string"},
        "score": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["positive", "topic", "score"],
}

CASES: list[tuple[str, T.OutputType]] = [
    ("Is this review positive?", T.BoolType()),
    ("What is the sentiment?", T.OptionsType(("POSITIVE", "NEGATIVE", "MIXED"))),
    ("How many stars, 1 to 5?", T.IntType()),
    ("Rate it from 0 to 1.", T.FloatType()),
    ("When might this have been written?", T.DateType()),
    # bounded by a cast: ::UTINYINT, ::DECIMAL(4, 1), ::TIMESTAMP
    ("How many people saw it?", T.IntType(2, signed=False)),
    ("Rate it from 0 to 10.", T.FloatType(3, 1)),
    ("When was it shown?", T.DateType(time=True)),
    ("Name up to three people or things mentioned.", T.ListType(T.StrType(), 1, 3)),
    ("Give two scores.", T.ListType(T.IntType(), 2, 2)),
    ("Summarise as JSON.", T.JsonType(json.dumps(SUMMARY_SCHEMA))),
    ("Grade the review.", T.RegexType("[A-F][+-]?")),
    ("Who is the critic talking about?", T.StrType()),
]


def reviews(n: int) -> list[str]:
    """The first ``n`` real SemBench movie reviews shipped with SemQL."""
    with open(sample_dir() / "Reviews.csv", newline="") as f:
        return [r["reviewText"] for r in csv.DictReader(f)][:n]


class RandomLogitsRuntime(LlamaRuntime):
    """Adversarial decoder (see the module docstring): prompts are tokenised and checked
    as usual but never evaluated; each step's logits are one of a few random vectors,
    rolled by a random offset, so the choice among allowed tokens is arbitrary.

    Pure random walks almost never close a string (one closing token among ~200k), so
    every generation would run to the length bounds; to cover short answers as well,
    each generation also draws how often a step strongly prefers tokens that close a
    value (quote, bracket, brace, newline, end of text): never, sometimes, or often.
    """

    CLOSE_RATES = (0.0, 0.05, 0.3)

    def __init__(self, path: str, seed: int = 0):
        super().__init__(path, n_ctx=4096)
        self._rng = np.random.default_rng(seed)
        self._pool = self._rng.standard_normal((4, self.n_vocab)).astype(np.float32)
        ends_line = np.array([b"\n" in piece for piece in self._pieces])
        self._boost = np.where(self._closing.any | ends_line, 100.0, 0.0).astype(np.float32)
        self._close_rate = 0.0

    def _load_head(self):
        return None, "the whole vocabulary (random logits, no model decodes)"

    def _prefill(self, tokens: list[int], segments=None, hidden: bool = False) -> int:
        self._close_rate = float(self._rng.choice(self.CLOSE_RATES))
        return 0

    def _decode(self, tokens: list[int], logits: bool, hidden: bool = False) -> None:
        return None

    def _logits(self) -> np.ndarray:
        row = self._pool[self._rng.integers(len(self._pool))]
        logits = np.roll(row, int(self._rng.integers(self.n_vocab)))
        if self._rng.random() < self._close_rate:
            logits += self._boost
        return logits


def stress(runtime: LlamaRuntime, out_type: T.OutputType, question: str, texts: list[str]) -> dict:
    """One constrained generation per text; counts of what came out, and the invalid ones.

    A generation that raises (for instance a cut-off before the grammar completes) counts
    as invalid too: the guarantee is a valid value for every row, not an error.
    """
    builder = PromptBuilder(runtime.style)
    invalid: list[tuple[str, str]] = []
    tokens = 0
    for text in texts:
        try:
            gen = runtime.generate(builder.build(question, out_type, ["review"], [text]), out_type)
        except SemQLError as err:
            invalid.append(("error", str(err)))
            continue
        tokens += gen.generated_tokens
        reason = violation(out_type, gen.text)
        if reason is None:
            try:
                out_type.parse(gen.text)
            except ValueError as err:
                reason = f"parse: {err}"
        if reason:
            invalid.append((gen.text, reason))
    return {
        "type": str(out_type),
        "generations": len(texts),
        "invalid": len(invalid),
        "examples": invalid[:5],
        "mean_tokens": round(tokens / max(len(texts), 1), 1),
    }
