"""Safe mode (no files, no extensions, locked settings) and per-query caps on LM work."""

from __future__ import annotations

import polars as pl
import pytest

import semql
from semql.errors import LimitExceeded, SafetyError

MAP = "SELECT id, {{LLMMap('Is it good?', txt, return_type='bool')}} AS ok FROM r"


@pytest.fixture()
def safe_con(tmp_path):
    con = semql.connect(safe=True, cache=False)
    con.register("t", pl.DataFrame({"a": [1, 2, 3]}))  # in-memory frames still work
    yield con
    con.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY t TO '{out}'",
        "ATTACH '{db}' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
)
def test_safe_mode_refuses_files_and_extensions(safe_con, tmp_path, sql):
    out, db = tmp_path / "leak.csv", tmp_path / "other.duckdb"
    with pytest.raises(SafetyError, match="refused in safe mode"):
        safe_con.query(sql.format(out=out, db=db))
    assert not out.exists() and not db.exists()


def test_safe_mode_cannot_be_switched_off_by_sql(safe_con):
    with pytest.raises(semql.ExecutionError, match="configuration"):
        safe_con.query("SET enable_external_access = true")
    with pytest.raises(SafetyError):
        safe_con.query("SELECT * FROM read_csv('/etc/passwd')")


def test_safe_mode_still_answers_queries(safe_con):
    assert safe_con.query("SELECT sum(a) AS s FROM t").item() == 6


def test_safe_mode_refuses_loading_files(safe_con, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n1\n")
    with pytest.raises(SafetyError):
        safe_con.load(path)


def test_lm_call_cap_stops_cleanly_and_reports_the_work(make_con):
    con, lm = make_con(max_lm_calls=3)
    with pytest.raises(LimitExceeded, match=r"max_lm_calls=3 reached: stopped after 3 LM calls"):
        con.query(MAP)
    assert len(lm.prompts) == 3
    assert not [t for t in con.tables() if t.startswith("__semql")]


def test_cap_per_query_and_nothing_half_written(make_con):
    con, lm = make_con(cache=True)
    with pytest.raises(LimitExceeded, match="result cache"):
        con.query(f"CREATE TABLE answers AS {MAP}", max_lm_calls=5)
    assert "answers" not in con.tables()
    con.query(f"CREATE TABLE answers AS {MAP}")  # no cap: finishes, paying only the rest
    assert len(lm.prompts) == 8  # 8 distinct rows: 5 before the cap, 3 after
    assert con.query("SELECT count(*) AS n FROM answers").item() == 200


def test_prompt_token_and_time_caps(make_con):
    con, _ = make_con()
    with pytest.raises(LimitExceeded, match="max_prompt_tokens=1 reached: stopped after 1 LM"):
        con.query(MAP, max_prompt_tokens=1)
    con.runtime.seconds_per_call = 0.05
    with pytest.raises(LimitExceeded, match="max_seconds=0.1 reached"):
        con.query(MAP, max_seconds=0.1)


def test_bad_caps_are_clear_errors(make_con):
    con, _ = make_con()
    with pytest.raises(semql.BindError, match="max_lm_calls must be a positive number"):
        con.query(MAP, max_lm_calls=0)


def test_max_seconds_caps_duckdbs_part_too():
    """A statement still running in DuckDB at the deadline is interrupted: the same
    LimitExceeded, no table created, and the connection keeps working."""
    con = semql.connect(cache=False)
    heavy = "CREATE TABLE big AS SELECT sum(hash(i)) AS s FROM range(5000000000) t(i)"
    with pytest.raises(LimitExceeded, match="max_seconds=0.5 reached"):
        con.query(heavy, max_seconds=0.5)
    assert (
        con.query("SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'big'").item() == 0
    )
    assert con.query("SELECT 1 AS x").item() == 1
