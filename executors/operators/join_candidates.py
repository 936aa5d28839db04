"""The right values an LLMJoin offers the LM for one left value: the few closest in
spelling, plus "none of these".

Offering all right values fails a small model twice: past 50 they are not even listed in
the prompt (the grammar alone enforces them), and a 270M model then takes the first path
the grammar allows for every row (bench/join_unmatched.py: 0 of 20 titles right). So, as
entity matching does with blocking, the candidates are the right values most similar to
the left value in character trigrams (robust to case, punctuation, "Spiderman" vs
"Spider-Man"), and the model chooses among those few, listed in the prompt, or none.
A row's candidates depend on its own value and the right values only, so naive and
optimized plans offer the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

CANDIDATES = 8
# The label for a left value that matches no right value (the first one that is not
# itself a right value).
NO_MATCH_LABELS = ("none of these", "(no match)", "__no_match__")


def _trigrams(text: str) -> Counter:
    t = f"  {''.join(c for c in str(text).lower() if c.isalnum() or c == ' ')}  "
    return Counter(t[i : i + 3] for i in range(len(t) - 2))


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(n * b[g] for g, n in a.items() if g in b)
    norm = (sum(n * n for n in a.values()) * sum(n * n for n in b.values())) ** 0.5
    return dot / norm if norm else 0.0


class Candidates:
    """Top-k right values by trigram cosine for each left value (ties in the values' text
    order: the right side's rows come from DISTINCT, whose order DuckDB does not fix, and
    a tie broken by it made the offered options, hence answers, vary from run to run)."""

    def __init__(self, right_values: Sequence, k: int = CANDIDATES):
        self.right = sorted(right_values, key=lambda v: (str(v), repr(v)))
        self.grams = [_trigrams(v) for v in self.right]
        self.k = k
        texts = {str(v) for v in self.right}
        self.none = next(label for label in NO_MATCH_LABELS if label not in texts)

    def of(self, left_value) -> tuple:
        grams = _trigrams(left_value)
        scored = sorted(range(len(self.right)), key=lambda i: (-_cosine(grams, self.grams[i]), i))
        return tuple(self.right[i] for i in scored[: self.k])
