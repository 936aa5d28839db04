"""bench/stored_scores.py reads one entry per model and setting: a file with two prompt
styles of a model is an error, or filtered to one style, never silently merged."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# appended, not first: a bench script must never shadow an installed package
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from stored_scores import by_setting, of_style  # noqa: E402

DUMP = [
    {"model": "gemma-3-270m.gguf", "task": "pos_bool", "shots": "0-shot"},
    {"model": "SmolLM2.gguf (chat)", "task": "pos_bool", "shots": "0-shot"},
    {"model": "SmolLM2.gguf (completion)", "task": "pos_bool", "shots": "0-shot"},
]


def test_two_styles_of_one_model_are_not_merged():
    with pytest.raises(SystemExit, match="pick one prompt style"):
        by_setting(DUMP, {"pos_bool"})


def test_one_style_is_kept_with_the_models_that_name_none():
    chat = by_setting(of_style(DUMP, "chat"), {"pos_bool"})[("pos_bool", "0-shot")]
    assert chat["smollm2"]["model"].endswith("(chat)") and chat["gemma"] is DUMP[0]
