"""The cost model's model speeds: measured once, then corrected by real runs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from semql.executors.runtimes.model_profile import MIN_CALLS, corrected, implausible, profile_for
from semql.planner.physical import ModelProfile, work_seconds

SLOW = ModelProfile(16.0, 2.0, 1.0, 4.0, True, "measured while the machine was busy")


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


def test_corrections_keep_the_measured_split_between_tokens_and_calls():
    """Runs alternately faster and slower than predicted move all three speeds alike, so
    what a token costs against a call stays as measured, also for a call of about a
    millisecond (rounded to fixed decimals, it was ratcheted against the token rates)."""
    import random

    measured = replace(SLOW, prefill_tokens_per_s=715.0, decode_tokens_per_s=72.3)
    measured = replace(measured, seconds_per_call=0.001)
    split = measured.prefill_tokens_per_s * measured.seconds_per_call
    pick = random.Random(0)
    profile = measured
    for _ in range(200):
        ratio = pick.choice([0.2, 0.4, 2.5, 5.0])
        again = corrected(profile, work_seconds(profile, 3000, 90, 60) * ratio, 3000, 90, 60)
        profile = again or profile
        assert profile.seconds_per_call > 0
        assert profile.prefill_tokens_per_s * profile.seconds_per_call == pytest.approx(
            split, rel=0.01
        )


class TimedRuntime:
    """Not a model: a local runtime whose speed measurements are given in advance (the
    profile logic under test only reads them)."""

    local = True
    model_id = "timing-stub"
    n_threads = 2
    reuses_prefix = True

    def __init__(self, *speeds: tuple[float, float, float]):
        self.speeds = list(speeds)
        self.measured = 0

    def measure_speeds(self, text: str) -> dict[str, float]:
        prefill, decode, per_call = self.speeds[self.measured]
        self.measured += 1
        return {
            "prefill_tokens_per_s": prefill,
            "decode_tokens_per_s": decode,
            "seconds_per_call": per_call,
            "chars_per_token": 4.0,
        }


def test_an_implausible_profile_is_measured_again(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    assert implausible(SLOW) and implausible(ModelProfile(10.0, 20.0, 0.001, 4.0, True, ""))
    assert implausible(ModelProfile(300.0, 40.0, 0.002, 4.0, True, "")) is None
    # measured while busy, then again: the faster is kept and stored
    busy = TimedRuntime((16.0, 2.0, 1.0), (350.0, 45.0, 0.002))
    assert profile_for(busy).prefill_tokens_per_s == 350.0 and busy.measured == 2
    # a stored implausible profile is not trusted: measured again on the next load
    stored = json.loads((tmp_path / "profiles.json").read_text())
    key = next(iter(stored))
    stored[key]["seconds_per_call"] = 1.047
    (tmp_path / "profiles.json").write_text(json.dumps(stored))
    again = TimedRuntime((320.0, 44.0, 0.002))
    assert profile_for(again).seconds_per_call == 0.002 and again.measured == 1
    # a plausible stored profile is used as it is
    third = TimedRuntime()
    assert profile_for(third).prefill_tokens_per_s == 320.0 and third.measured == 0


def test_a_profile_stored_by_an_older_semql_is_read(monkeypatch, tmp_path):
    """Files written before ``reuses_prefix`` name ``reuse_chunk`` (tokens per prefill
    chunk, 0 for none): read as whether prefixes are reused, not measured again. An entry
    that fits no version of the profile is measured again instead of failing the query."""
    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    old = {
        "prefill_tokens_per_s": 320.0,
        "decode_tokens_per_s": 44.0,
        "seconds_per_call": 0.002,
        "chars_per_token": 4.0,
        "source": "measured 2026-12-01, 2 threads",
    }
    key = f"{TimedRuntime.model_id}:{TimedRuntime.n_threads}"
    for chunk, reuses in ((64, True), (0, False)):
        (tmp_path / "profiles.json").write_text(json.dumps({key: {**old, "reuse_chunk": chunk}}))
        runtime = TimedRuntime()
        got = profile_for(runtime)
        assert (got.reuses_prefix, got.prefill_tokens_per_s, runtime.measured) == (reuses, 320, 0)
    (tmp_path / "profiles.json").write_text(json.dumps({key: {**old, "speed": 1.0}}))
    runtime = TimedRuntime((300.0, 40.0, 0.002))
    assert profile_for(runtime).prefill_tokens_per_s == 300.0 and runtime.measured == 1


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


class ServerStub:
    """Not a server: the attributes a remote runtime's profile is keyed and learnt by."""

    local = False
    remote_speeds = True
    model_id = "http|http://gpu-a/v1|http://gpu-b/v1|"
    concurrency = 8


def test_a_servers_profile_is_learnt_from_runs_per_endpoints_and_concurrency(monkeypatch, tmp_path):
    from semql.executors.lm.stats import OperatorStats, QueryStats
    from semql.executors.runtimes.model_profile import learn_from_run
    from semql.planner.physical import DEFAULT_PROFILE

    monkeypatch.setenv("SEMQL_CACHE_DIR", str(tmp_path))
    server = ServerStub()
    assert profile_for(server) == DEFAULT_PROFILE  # never probed
    op = OperatorStats("LMMap", lm_calls=40, prompt_tokens=2000, generated_tokens=40)
    op.seconds = work_seconds(DEFAULT_PROFILE, 2000, 40, 40) / 16  # 16x faster
    stats = QueryStats()
    stats.operators.append(op)
    learnt = learn_from_run(server, DEFAULT_PROFILE, stats)
    assert learnt.prefill_tokens_per_s > DEFAULT_PROFILE.prefill_tokens_per_s
    assert profile_for(server) == learnt  # stored for the next connection
    other = ServerStub()
    other.concurrency = 1  # another setting is another profile
    assert profile_for(other) == DEFAULT_PROFILE
    stub = ServerStub()
    stub.remote_speeds = False  # a test double: nothing learnt, nothing stored
    assert learn_from_run(stub, DEFAULT_PROFILE, stats) is DEFAULT_PROFILE
