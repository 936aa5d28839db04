"""SemBench scorers on hand-computed cases, and the runner end to end on a small sample."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from semql.sembench import metrics, scenario
from semql.sembench.runner import main as bench_main
from semql.sembench.runner import markdown, summarise


def test_f1_with_limit_is_limit_aware():
    # 5 returned, 4 valid; ground truth has 100 rows; k = 5
    m = metrics.f1_limit([1, 2, 3, 4, 999], set(range(1, 101)), limit=5)
    assert m["precision"] == pytest.approx(0.8)
    assert m["recall"] == pytest.approx(0.8)  # min(4, 5) / min(5, 100)
    assert m["f1"] == pytest.approx(0.8)
    # ground truth smaller than k: recall over |truth|
    m = metrics.f1_limit([1, 2], {1, 2, 3}, limit=5)
    assert m["precision"] == 1.0 and m["recall"] == pytest.approx(2 / 3)
    # output longer than k is cut to k, then taken as a set (as SemBench's evaluator does)
    m = metrics.f1_limit([9, 9, 1, 2, 3, 4, 5], {1, 2, 3, 4, 5}, limit=5)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 5)


def test_a_pair_returned_twice_counts_once():
    """Q7's self-join over a movie whose reviews are each in the table twice returns
    every pair 8 times; SemBench compares sets of pairs, so a perfect answer scores 1."""
    truth = [metrics.unordered_pair("m", a, b) for a, b in [(1, 2), (1, 3)]]
    returned = [metrics.unordered_pair("m", a, b) for a, b in [(1, 2), (2, 1), (1, 3)] * 4]
    assert metrics.f1_limit(returned, truth)["f1"] == 1.0


def test_f1_without_limit():
    m = metrics.f1_limit([1, 2, 3, 4], {3, 4, 5, 6, 7, 8}, limit=None)
    assert m["precision"] == 0.5 and m["recall"] == pytest.approx(2 / 6)
    assert m["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert metrics.f1_limit([], set())["f1"] == 1.0


def test_pairs_are_unordered():
    assert metrics.unordered_pair("m", 5, 2) == metrics.unordered_pair("m", 2, 5) == ("m", 2, 5)


def test_relative_error_and_group_counts():
    m = metrics.relative_error(90, 100)
    assert m["relative_error"] == pytest.approx(0.1) and m["quality"] == pytest.approx(1 / 1.1)
    assert metrics.relative_error(None, 3)["quality"] == 0.0
    g = metrics.group_counts({"POSITIVE": 30, "NEGATIVE": 90}, {"POSITIVE": 40, "NEGATIVE": 80})
    assert g["relative_error"] == pytest.approx((10 / 40 + 10 / 80) / 2)
    g = metrics.group_counts({"POSITIVE": 120}, {"POSITIVE": 40, "NEGATIVE": 80})
    assert g["relative_error"] == pytest.approx((80 / 40 + 1.0) / 2)
    truth = {"POSITIVE": 40, "NEGATIVE": 80}
    g = metrics.group_counts({**truth, "MIXED": 5}, truth)
    assert g["relative_error"] == pytest.approx(1.0 / 3)  # a group the truth lacks: error 1


def test_spearman():
    assert metrics.spearman({1: 1, 2: 2, 3: 3}, {1: 10, 2: 20, 3: 30})["spearman"] == 1.0
    assert metrics.spearman({1: 3, 2: 2, 3: 1}, {1: 10, 2: 20, 3: 30})["spearman"] == -1.0
    m = metrics.spearman({1: 1, 2: 1, 3: 2, 4: None}, {1: 1, 2: 2, 3: 3, 4: 4, 5: 5})
    assert m["n"] == 3 and m["spearman"] == pytest.approx(0.8660254)


def test_scenario_hides_labels_and_scores_a_perfect_answer():
    scen = scenario.load("movie")
    assert [q.name for q in scen.queries] == [f"Q{i}" for i in range(1, 11)]
    truth = scen.truth_connection(rows=300)
    import semql

    with semql.connect() as con:
        scen.register(con, rows=300)
        cols = con.query("DESCRIBE Reviews")["column_name"].to_list()
        assert not {"scoreSentiment", "reviewState", "originalScore"} & set(cols)
        assert con.query("SELECT count(*) AS n FROM Reviews")["n"][0] == 300
    q3 = next(q for q in scen.queries if q.name == "Q3")
    gold = truth.sql(q3.gold_sql).pl()
    assert scen.score(q3, gold, truth)["quality"] == 1.0
    q8 = next(q for q in scen.queries if q.name == "Q8")
    assert scen.score(q8, truth.sql(q8.gold_sql).pl(), truth)["quality"] == 1.0
    q2 = next(q for q in scen.queries if q.name == "Q2")
    assert scen.score(q2, pl.DataFrame({"reviewId": [-1]}), truth)["f1"] == 0.0


def test_markdown_table():
    summary = {
        "naive": {
            "Q1": {
                "status": "ok",
                "quality": 0.5,
                "seconds": 10.0,
                "lm_calls": 100,
                "prompt_tokens": 1,
                "cached_prompt_tokens": 0,
            }
        },
        "optimized": {
            "Q1": {
                "status": "ok",
                "quality": 0.5,
                "seconds": 1.0,
                "lm_calls": 8,
                "prompt_tokens": 1,
                "cached_prompt_tokens": 0,
            }
        },
    }
    text = markdown(summary)
    assert "| Q1 | 0.500 | 10.0 | 100 | 0.500 | 1.0 | 8 |" in text
    assert summarise([]) == {}


@pytest.mark.model
def test_runner_end_to_end_on_a_small_sample(tmp_path, capsys):
    code = bench_main(
        [
            "movie",
            "--config",
            "naive,optimized",
            "--queries",
            "Q2,Q8",
            "--rows",
            "60",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    files = {p.suffix for p in tmp_path.iterdir()}
    assert {".json", ".md"} <= files
    doc = json.loads(next(tmp_path.glob("*.json")).read_text())
    rows = doc["results"]
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    by = {(r["config"], r["query"]): r for r in rows}
    for q in ("Q2", "Q8"):
        assert 0.0 <= by[("optimized", q)]["quality"] <= 1.0
        assert by[("optimized", q)]["lm_calls"] <= by[("naive", q)]["lm_calls"]
    # naive: every row of the sample, asked or (a text the calibration sample asked)
    # read from the operator's memory
    naive_q2 = by[("naive", "Q2")]
    assert naive_q2["lm_calls"] + naive_q2["cache_hits"] == 60
    assert "mean quality" in capsys.readouterr().out


@pytest.mark.model
def test_timeout_is_a_real_limit(tmp_path):
    """--timeout is the query's max_seconds: the query stops at it and is reported."""
    args = ["movie", "--config", "naive", "--queries", "Q10", "--rows", "60"]
    assert bench_main([*args, "--timeout", "1", "--out", str(tmp_path)]) == 0
    doc = json.loads(next(tmp_path.glob("*.json")).read_text())
    (row,) = doc["results"]
    assert row["status"] == "timeout" and row["quality"] is None
    assert row["lm_calls"] < 60  # stopped, not finished and then marked


def test_unknown_query_is_an_error(tmp_path, capsys):
    assert bench_main(["movie", "--queries", "Q99", "--out", str(tmp_path)]) == 2
    assert "Q99" in capsys.readouterr().err


def test_spearman_of_a_constant_prediction_is_zero_quality():
    m = metrics.spearman({1: 3, 2: 3, 3: 3}, {1: 1, 2: 2, 3: 3})
    assert m["spearman"] is None and m["quality"] == 0.0


def test_disable_takes_every_rewrite_switch_and_names_an_unknown_one():
    from semql import REWRITES
    from semql.sembench.runner import build_parser, options_from

    args = build_parser().parse_args(["movie", "--disable", ",".join(REWRITES)])
    assert options_from(args) == {name: False for name in REWRITES}
    assert len(REWRITES) == 10 and "proxy" in REWRITES
    with pytest.raises(ValueError, match="unknown rewrite 'dedupe'"):
        options_from(build_parser().parse_args(["movie", "--disable", "dedup,dedupe"]))


def test_sql_dir_replaces_the_scenario_sql_and_names_a_missing_file(tmp_path, capsys):
    """--sql-dir scores one's own wording against the scenario's gold."""
    reworded = Path(__file__).parent.parent / "bench" / "sembench_reworded" / "movie"
    own = scenario.load("movie", reworded)
    base = scenario.load("movie")
    assert [q.name for q in own.queries] == [q.name for q in base.queries]
    for mine, theirs in zip(own.queries, base.queries, strict=True):
        assert mine.sql == (reworded / f"{mine.name}.sql").read_text() != theirs.sql
        assert mine.gold_sql == theirs.gold_sql
    (tmp_path / "Q1.sql").write_text("SELECT 1")
    assert bench_main(["movie", "--sql-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Q2" in err and str(tmp_path / "Q2.sql") in err
