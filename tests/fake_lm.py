"""FakeLM: a deterministic stand-in for a model, for unit tests of planner/rewrite logic ONLY.

It answers from keywords in the prompt's last row, so tests can check which rows reached
the LM, how often it was called, and that rewrites do not change answers. Nothing a user
runs uses it.
"""

from __future__ import annotations

import json
import re
import time

from semql.executors.runtimes.runtime import Generation
from semql.grammar.types import BoolType, IntType, OptionsType, OutputType

# The table ``r`` of the make_con fixture (conftest.py): row i reads "a WORDS[i % 8] movie".
WORDS = ["good", "bad", "great", "dull", "fun", "meh", "love", "slow"]
ROWS = 200


class FakeLM:
    """A :class:`~semql.executors.runtimes.runtime.Runtime` that is not a model."""

    style = "completion"
    model_id = "fake-lm-for-planner-tests"
    path = "<fake>"
    name = "FakeLM"
    n_ctx = None
    decoding = 0
    local = False
    concurrency = 1
    blocks = False
    batch_rows = 1
    placement = "in-process (a fake LM for planner tests)"
    remote_speeds = False
    label_scores = False

    def __init__(self, seconds_per_call: float = 0.0):
        self.prompts: list[str] = []
        self.seconds_per_call = seconds_per_call  # a model's cost, for cost decisions

    @staticmethod
    def last_row(prompt: str) -> str:
        block = prompt.rsplit("\n\n", 1)[-1]
        return block.rsplit("\nAnswer:", 1)[0]

    def generate(self, prompt: str, out_type: OutputType) -> Generation:
        self.prompts.append(prompt)
        if self.seconds_per_call:
            time.sleep(self.seconds_per_call)
        row = self.last_row(prompt).lower()
        if isinstance(out_type, BoolType):
            text = " yes" if re.search(r"\b(good|great|fun|love)", row) else " no"
        elif isinstance(out_type, OptionsType):
            labels = out_type.labels()
            found = [lab for lab in labels if lab.lower() in row]
            text = " " + (found[0] if found else labels[len(row) % len(labels)])
        elif isinstance(out_type, IntType):
            text = f" {len(row) % 10}"
        else:
            first_value = row.split("\n", 1)[0].split(":", 1)[-1].strip()
            text = " " + json.dumps(first_value.strip('"')[:20])
        return Generation(text, len(prompt) // 4, 0, 1)

    def close(self) -> None:
        pass
