"""The cost model's model speeds: measured once, then corrected by real runs."""

from __future__ import annotations

import json

import pytest

from semql.executors.model_profile import MIN_CALLS, corrected
from semql.planner.cost import ModelProfile, work_seconds

SLOW = ModelProfile(16.0, 2.0, 1.0, 4.0, 16, "measured while the machine was busy")


def test_a_run_that_agrees_changes_nothing_and_small_runs_say_nothing():
    seconds = work_seconds(SLOW, 2000, 40, 40)
    assert corrected(SLOW, seconds, 2000, 40, 40) is None
    assert corrected(SLOW, seconds * 1.2, 2000, 40, 40) is None  # within tolerance
    assert corrected(SLOW, seconds / 20, 2000, 4, MIN_CALLS - 1) is None


def test_a_run_far_faster_than_predicted_moves_the_speeds_halfway_in_log_scale():
    seconds = work_seconds(SLOW, 2000, 40, 40) / 16  # 16x faster than predicted
    better = corrected(SLOW, seconds, 2000, 40, 40)
    assert better.prefill_tokens_per_s == pytest.approx(64.0)  # 16 * sqrt(16)
    assert better.decode_tokens_per_s == pytest.approx(8.0)
    assert better.seconds_per_call == pytest.approx(0.25)
    assert "corrected" in better.source
    slower = corrected(SLOW, work_seconds(SLOW, 2000, 40, 40) * 4, 2000, 40, 40)
    assert slower.prefill_tokens_per_s == pytest.approx(8.0)


@pytest.mark.model
def test_real_queries_correct_an_implausible_stored_profile(model_con, monkeypatch, tmp_path):
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    model_con._runtime_profile = SLOW
    model_con.query(
        "SELECT {{LLMMap('Is this review positive?', reviewText)}} AS p FROM "
        "(SELECT * FROM Reviews WHERE id = 'taken_3' ORDER BY reviewId LIMIT 24)"
    )
    assert model_con.stats.lm_calls >= MIN_CALLS
    learned = model_con.profile()
    assert learned.prefill_tokens_per_s > SLOW.prefill_tokens_per_s
    stored = json.loads((tmp_path / "profiles.json").read_text())
    assert [p["prefill_tokens_per_s"] for p in stored.values()] == [learned.prefill_tokens_per_s]
