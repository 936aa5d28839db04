"""Property-based fuzzing of the front end (hypothesis): malformed and adversarial queries
end in a SemQLError with a message, or in a result — never another exception, a hang or
a changed table. Failures found are kept in FUZZ_CORPUS as regression cases.

The LM is FakeLM: these test the dialect, binder, planner and engine, not a model.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import semql

# Queries that once escaped as another exception type or misbehaved; each must now give
# a SemQLError or a result.
FUZZ_CORPUS = [
    "SELECT {{LLMMap('q', txt)",
    "SELECT {{}} FROM r",
    "SELECT {{LLMMap()}} FROM r",
    "SELECT {{LLMMap('q', txt, options=())}} FROM r",
    "SELECT {{LLMMap('q', {{LLMMap('p', txt)}})}} FROM r",
    "SELECT {{LLMMap(txt, 'q')}} FROM r",
    "SELECT {{LLMMap('q', txt, options=('a', 'a'), options=('b'))}} FROM r",
    "SELECT {{LLMMap('q', txt -- comment }})}} FROM r",
    "SELECT {{LLMMap('q', txt /* }} */)}} FROM r",
    "SELECT {{LLMMap('" + "x" * 20000 + "', txt)}} FROM r LIMIT 1",
    "SELECT {{LLMMap('q', txt, accuracy='high')}} FROM r",
    "SELECT {{LLMMap('q', txt, examples=1)}} FROM r",
    "SELECT {{LLMMap('ünï©ødé ✓', txt, options=('да', 'нет'))}} FROM r LIMIT 2",
    "SELECT {{LLMQA('q', (SELECT txt FROM r), options=txt)}}",
    "SELECT * FROM r JOIN r AS s ON {{LLMJoin(r.txt)}}",
    "SELECT {{LLMMap('q', txt)}} FROM r WHERE {{LLMMap('q', txt)}} = 'x' GROUP BY 1 HAVING",
    "}}{{ SELECT",
    "SELECT '{{LLMMap(''q'', txt)}}' AS s",
    "SELECT {{LLMMap('q', txt, return_type='float')}} + 'a' FROM r LIMIT 2",
    "WITH x AS (SELECT {{LLMMap('q', txt)}} AS a FROM r) SELECT * FROM x, x",
]

PIECES = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIMIT", "ORDER BY", "GROUP BY", "HAVING",
    "r", "txt", "id", "movie", "*", ",", "(", ")", "=", "<", "'", "''", "{{", "}}", "{", "}",
    "LLMMap", "LLMQA", "LLMJoin", "options=", "return_type=", "examples=", "accuracy=",
    "'bool'", "'int'", "('a', 'b')", "TRUE", "NULL", "1", "-1", "1e308", "99999999999999999999",
    "--", "/*", "*/", ";", "\n", "'ü✓'", "CAST(", "AS", "INT", "::", "DISTINCT", "COUNT(*)",
]  # fmt: skip

LM_CALL = st.builds(
    lambda fn, q, args: f"{{{{{fn}({q}{args})}}}}",
    st.sampled_from(["LLMMap", "LLMQA", "LLMJoin", "llmmap", "LLMMAP", "Unknown"]),
    st.sampled_from(["'q'", "''", "'it''s'", "txt", "1", "NULL", "'" + "y" * 3000 + "'"]),
    st.lists(
        st.sampled_from(
            [", txt", ", id", ", movie", ", r.txt", ", options=('a','b')", ", options=txt",
             ", return_type='int'", ", return_type='nope'", ", examples=(('x', 'a'),)",
             ", accuracy=0.9", ", accuracy=7", ", quantifier='+'", ", regex='[a-z]+'",
             ", (SELECT 1)", ", {{LLMMap('p', txt)}}", ", -- c\n txt", ", txt, txt"]
        ),
        max_size=4,
    ).map("".join),
)  # fmt: skip

QUERY = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=14).map(" ".join),
    st.builds(
        lambda call, tail: f"SELECT id, {call} AS v FROM r {tail}",
        LM_CALL,
        st.sampled_from(["", "LIMIT 3", "WHERE id < 5", "ORDER BY v LIMIT 2", "GROUP BY id"]),
    ),
    st.builds(lambda call: f"SELECT id FROM r WHERE {call} LIMIT 4", LM_CALL),
    st.text(max_size=60).map(lambda t: "SELECT {{LLMMap('" + t + "', txt)}} FROM r LIMIT 2"),
)


def table_digest(con) -> str:
    rows = con.duckdb.execute("SELECT * FROM r ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def run_one(con, sql: str) -> None:
    """A result or a SemQLError with a message; anything else fails the test."""
    try:
        con.query(sql, max_lm_calls=40)
    except semql.SemQLError as err:
        assert str(err).strip(), f"empty error message for {sql!r}"


@pytest.fixture(scope="module")
def fuzz_con():
    import polars as pl

    from fake_lm import WORDS, FakeLM

    con = semql.connect(runtime=FakeLM(), cache=False)
    con.register(
        "r",
        pl.DataFrame(
            {
                "id": list(range(40)),
                "movie": [f"m{i % 5}" for i in range(40)],
                "txt": [f"a {WORDS[i % len(WORDS)]} movie" for i in range(40)],
            }
        ),
    )
    yield con
    con.close()


@pytest.mark.parametrize("sql", FUZZ_CORPUS)
def test_corpus(fuzz_con, sql):
    before = table_digest(fuzz_con)
    run_one(fuzz_con, sql)
    assert table_digest(fuzz_con) == before


@settings(
    max_examples=800,
    deadline=5000,  # no hang: every case within 5 s
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(QUERY)
def test_fuzzed_queries_end_in_a_semql_error_or_a_result(fuzz_con, sql):
    before = table_digest(fuzz_con)
    run_one(fuzz_con, sql)
    assert table_digest(fuzz_con) == before
    assert not [t for t in fuzz_con.tables() if t.startswith("__semql")]


VALID_CALL = st.sampled_from(
    [
        "{{LLMMap('Is it good?', txt)}}",
        "{{LLMMap('q', txt, options=('a', 'b'))}}",
        "{{LLMMap('q', movie, return_type='int')}}",
    ]
)
WRITE = st.builds(
    lambda kind, call, tail: (kind, f"SELECT id, CAST({call} AS VARCHAR) AS v FROM r {tail}"),
    st.sampled_from(["ctas", "insert"]),
    st.one_of(LM_CALL, VALID_CALL),
    st.sampled_from(["", "LIMIT 3", "WHERE id < 5", "ORDER BY v LIMIT 2"]),
)


@settings(
    max_examples=150,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(WRITE)
def test_fuzzed_writes_with_lm_calls_are_all_or_nothing(fuzz_con, case):
    """CREATE TABLE ... AS / INSERT ... SELECT with (often malformed) LM calls: an error
    leaves no new table and the target unchanged; success writes exactly the rows the
    SELECT alone returns."""
    kind, select = case
    con = fuzz_con
    con.duckdb.execute("DROP TABLE IF EXISTS out_t")
    con.duckdb.execute("CREATE OR REPLACE TABLE sink (id BIGINT, v VARCHAR)")
    con.duckdb.execute("INSERT INTO sink VALUES (-1, 'old')")
    sql = f"CREATE TABLE out_t AS {select}" if kind == "ctas" else f"INSERT INTO sink {select}"
    try:
        con.query(sql, max_lm_calls=40)
    except semql.SemQLError as err:
        assert str(err).strip()
        assert "out_t" not in con.tables()
        assert con.duckdb.execute("SELECT * FROM sink").fetchall() == [(-1, "old")]
        return
    expected = sorted(con.query(select, max_lm_calls=40).rows(), key=repr)
    if kind == "ctas":
        written = con.duckdb.execute("SELECT * FROM out_t").fetchall()
    else:
        written = con.duckdb.execute("SELECT * FROM sink WHERE id <> -1 OR v <> 'old'").fetchall()
    if "LIMIT" in select:
        assert len(written) == len(expected)  # which rows LIMIT keeps (ties) is DuckDB's
    else:
        assert sorted(written, key=repr) == expected
