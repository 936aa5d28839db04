"""Each error kind with its message; register() for every source kind; no leftovers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import duckdb
import pandas as pd
import polars as pl
import pytest

import semql

from fake_lm import FakeLM


@pytest.fixture()
def con():
    c = semql.connect(runtime=FakeLM(), cache=False)
    c.register(
        "t",
        pl.DataFrame(
            {"id": [1, 2, 3], "txt": ["good film", "bad film", "great fun"], "n": [1, 2, 3]}
        ),
    )
    yield c
    c.close()


def temp_tables(con) -> list[str]:
    rows = con.duckdb.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '__semql%'"
    ).fetchall()
    return [r[0] for r in rows]


def test_error_hierarchy_is_exported():
    for cls in (
        semql.ParseError,
        semql.BindError,
        semql.TypeInferenceError,
        semql.ModelError,
        semql.ExecutionError,
    ):
        assert issubclass(cls, semql.SemQLError)


def test_parse_error(con):
    with pytest.raises(semql.ParseError) as info:
        con.query("SELECT * FROM t WHERE {{LLMMap('q', txt)")
    assert info.value.line == 1 and info.value.column == 23


def test_parse_error_from_duckdb_for_plain_sql(con):
    with pytest.raises(semql.ParseError, match="syntax error"):
        con.query("SELEC 1")


@pytest.mark.parametrize(
    "sql, words",
    [
        ("SELECT * FROM nope WHERE LLMMap('q', x)", "nope"),
        ("SELECT * FROM t WHERE LLMMap('q', missing_col)", "missing_col"),
        ("SELECT * FROM t WHERE LLMMap('q', txt, colour='red')", "unknown argument 'colour'"),
        ("SELECT * FROM t WHERE LLMMap(txt)", "question"),
        ("SELECT LLMMap('q') FROM t", "needs at least one column"),
        ("SELECT LLMMap('q', LLMMap('r', txt)) FROM t", "nested LM calls"),
        ("SELECT * FROM t WHERE LLMMap('q', txt, options=txt2)", "options"),
        ("SELECT LLMJoin(t.txt, t.txt) FROM t", "JOIN ... ON"),
        (
            "SELECT LLMMap('q', txt, options=('a', 'b'), examples=(('x', 'a'), ('y', 'c'))) FROM t",
            "example 2 answers 'c', which is not one of the options (a, b)",
        ),
        ("SELECT * FROM missing_table", "missing_table"),
    ],
)
def test_bind_errors_name_the_problem(con, sql, words):
    with pytest.raises(semql.BindError) as info:
        con.query(sql)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "sql, line, column",
    [
        ("SELECT {{LLMMap('q', missing_col)}} FROM t", 1, 22),
        ("SELECT id\nFROM t AS r\nWHERE {{LLMMap('q', r.txtt)}} = TRUE", 3, 23),
        ("SELECT id FROM t\nWHERE LLMMap('q', txt) AND nope_col > 1", 2, 28),
        ("SELECT * FROM t, missing_table", 1, 18),
        ("SELECT 'missing_col', missing_col FROM t", 1, 23),
        ("SELECT LLMMapp('q', txt) FROM t", 1, 8),
    ],
)
def test_unknown_names_point_into_the_query_the_user_wrote(con, sql, line, column):
    """DuckDB reports these against the SQL SemQL generated; the error must instead
    show the user's line with a caret under the name, and never the generated SQL."""
    with pytest.raises(semql.BindError) as info:
        con.query(sql)
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert sql.splitlines()[line - 1] in str(err)
    assert "__" not in str(err)  # no generated names (__a0, __ord, __semql_...)


@pytest.mark.parametrize(
    "sql, line, column, words",
    [
        ("SELECT id,\n  {{LLMMap('q', txt, options=())}} FROM t", 2, 5, "options= is empty"),
        (
            "SELECT id FROM t WHERE LLMMap('q', txt)\n  AND LLMMap('r', txt, calibration='x')",
            2,
            7,
            "calibration=",
        ),
        ("SELECT LLMMap('q', txt, k=0) AS a FROM t", 1, 8, "k="),
        ("SELECT id FROM t WHERE {{LLMMap(txt)}}", 1, 26, "question"),
    ],
)
def test_an_lm_calls_argument_errors_point_at_the_call(con, sql, line, column, words):
    """The binder raises these without the query text; the error names the call's place
    in the query the user wrote (with several calls, the one at fault)."""
    with pytest.raises(semql.BindError) as info:
        con.query(sql)
    err = info.value
    assert words in str(err)
    assert (err.line, err.column) == (line, column)
    assert sql.splitlines()[line - 1] in str(err)


@pytest.mark.parametrize(
    "sql, line, column",
    [
        ("SELEC 1", 1, 1),
        ("SELECT 1,\n  2 FORM t WHERE", 2, 10),
        ("SELECT {{LLMMap('q', txt)}} AS a\nFROM t WHERE id IN (1,", 2, 0),
    ],
)
def test_plain_sql_syntax_errors_keep_duckdbs_place(con, sql, line, column):
    with pytest.raises(semql.ParseError) as info:
        con.query(sql)
    assert info.value.line == line
    if column:
        assert info.value.column == column
        assert "^" in str(info.value) and sql.splitlines()[line - 1] in str(info.value)


@pytest.mark.parametrize("prefix", ["", "EXPLAIN "])
def test_a_type_error_in_the_users_query_points_at_it_also_in_explain(con, prefix):
    """A LIKE on a DATE column: DuckDB gives no position; the error names LIKE's place,
    and EXPLAIN raises it instead of printing "(no estimates: ...)"."""
    con.query("CREATE TABLE d AS SELECT DATE '2023-01-02' AS created, 'x' AS txt")
    sql = f"{prefix}SELECT * FROM d\nWHERE created LIKE '2023%' AND {{{{LLMMap('q', txt)}}}}"
    with pytest.raises(semql.BindError) as info:
        con.query(sql)
    assert (info.value.line, info.value.column) == (2, 15)
    with pytest.raises(semql.BindError):
        con.explain(sql.removeprefix(prefix))


@pytest.mark.parametrize("lm", ["", ", {{LLMMap('q', txt)}} AS y"])
def test_a_type_error_lists_a_few_of_duckdbs_candidate_functions(con, lm):
    """DuckDB lists all 50 overloads of ``+``; the error keeps its message, a few and a count,
    in plain SQL and in the SQL SemQL generates around an LM call."""
    con.query("CREATE TABLE w AS SELECT 'x' AS txt")
    with pytest.raises(semql.BindError) as info:
        con.query(f"SELECT true + 0.5 AS x{lm} FROM w")
    text = str(info.value)
    assert "No function matches" in text and "Candidate functions:" in text
    assert text.count('"+"(') == 4 and re.search(r"\.\.\. and \d+ more$", text)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, (SELECT LLMMap('q', t2.txt) FROM c t2 WHERE t2.id = c.id) AS p FROM c",
        "SELECT id FROM c WHERE EXISTS (SELECT 1 FROM c t2 WHERE t2.id = c.id\n"
        "  AND LLMMap('q', t2.txt))",
    ],
)
def test_an_lm_call_in_a_correlated_subquery_is_refused_at_the_outer_column(con, sql):
    """Not DuckDB's "table c not found" from generated SQL: the outer column, named."""
    con.query("CREATE TABLE c AS SELECT 1 AS id, 'x' AS txt")
    with pytest.raises(semql.BindError, match="correlated subquery") as info:
        con.query(sql)
    line = sql.splitlines()[info.value.line - 1]
    assert line[info.value.column - 1 :].startswith("c.id")
    # the same subquery reading no outer column runs
    con.query(sql.replace("= c.id", "= 1"))


def test_braces_must_hold_an_lm_call(con):
    with pytest.raises(semql.ParseError, match="must hold an LM function call") as info:
        con.query("SELECT {{Foo('q', txt)}} FROM t")
    assert (info.value.line, info.value.column) == (1, 8)


@pytest.mark.parametrize("sql", ["", "   \n ", "-- only a comment", "/* block */ -- and line"])
def test_an_empty_query_is_an_error(con, sql):
    with pytest.raises(semql.ParseError, match="empty query"):
        con.query(sql)


def test_type_inference_conflict_names_call_and_both_types(con):
    with pytest.raises(semql.TypeInferenceError) as info:
        con.query("SELECT * FROM t WHERE LLMMap('q', txt, return_type='int') = TRUE")
    text = str(info.value)
    assert "LLMMap('q', txt" in text and "int" in text and "bool" in text


def test_bad_return_type(con):
    with pytest.raises(semql.TypeInferenceError, match="unknown return_type"):
        con.query("SELECT LLMMap('q', txt, return_type='colour') FROM t")


@pytest.mark.parametrize(
    "argument, reason",
    [
        ("regex='[a-z'", "invalid regex grammar: Regex parsing error: Unclosed '['"),
        ("regex='[a-z]+', quantifier='+'", "regex= cannot be combined with quantifier="),
        (
            """return_type='{"type": "colour"}'""",
            'invalid json_schema grammar: Unsupported type "colour"',
        ),
        (
            """return_type='{"type": "integer", "minimum": 5, "maximum": 1}'""",
            "invalid json_schema grammar: Invalid range",
        ),
    ],
)
def test_a_grammar_xgrammar_rejects_fails_at_planning_with_its_reason(con, argument, reason):
    """A malformed regex or a JSON schema xgrammar cannot compile is the user's error,
    named with the call before any row runs, not an internal error mid-query; so is a
    regex asked for a list, whose items would not follow it."""
    with pytest.raises(semql.TypeInferenceError) as info:
        con.query(f"SELECT LLMMap('q', txt, {argument}) FROM t")
    assert "LLMMap('q', txt" in str(info.value) and reason in str(info.value)
    assert "/project/cpp" not in str(info.value)  # xgrammar's log prefix


def test_importing_semql_loads_neither_xgrammar_nor_torch():
    """xgrammar brings torch (seconds to import); planning imports it only to check a
    user's regex or schema, so ``import semql`` and a connection without xgrammar stay
    light and can name the missing install."""
    code = "import sys, semql; print(sorted({'xgrammar', 'torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_model_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    with semql.connect(model=str(missing)) as c:
        c.register("t", pl.DataFrame({"a": ["x"]}))
        with pytest.raises(semql.ModelError, match=str(missing)):
            c.query("SELECT LLMMap('q', a) FROM t")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    with semql.connect(model=str(junk)) as c:
        c.register("t", pl.DataFrame({"a": ["x"]}))
        with pytest.raises(semql.ModelError, match="not a GGUF"):
            c.query("SELECT LLMMap('q', a) FROM t")


def test_execution_error_and_no_leftovers(con):
    with pytest.raises(semql.ExecutionError) as err:
        con.query("SELECT 1 / 0 + CAST(txt AS INT) FROM t WHERE LLMMap('q', txt)")
    assert "Could not convert string" in str(err.value)
    assert "LINE" not in str(err.value) and "__" not in str(err.value)  # no generated SQL
    assert temp_tables(con) == []
    with pytest.raises(semql.ExecutionError) as err:  # plain SQL keeps DuckDB's excerpt
        con.query("SELECT CAST(txt AS INT) FROM t")
    assert "LINE 1: SELECT CAST(txt AS INT)" in str(err.value)


def test_no_temp_objects_after_success(con):
    con.query("SELECT id, LLMMap('q', txt) AS a FROM t WHERE LLMMap('good?', txt) LIMIT 1")
    assert temp_tables(con) == []


def test_failed_ctas_leaves_no_table(con):
    with pytest.raises(semql.SemQLError):
        con.query("CREATE TABLE out1 AS SELECT CAST(txt AS INT) AS x, LLMMap('q', txt) FROM t")
    assert "out1" not in con.tables()
    assert temp_tables(con) == []


def test_ctas_and_insert_with_lm_functions(con):
    con.query("CREATE TABLE labelled AS SELECT id, LLMMap('good?', txt) = TRUE AS ok FROM t")
    assert con.query("SELECT count(*) AS n FROM labelled")["n"][0] == 3
    con.query("INSERT INTO labelled SELECT id + 10, LLMMap('good?', txt) = TRUE FROM t")
    assert con.query("SELECT count(*) AS n FROM labelled")["n"][0] == 6


def test_register_every_source_kind(tmp_path):
    rows = {"a": [1, 2], "b": ["x", "y"]}
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    parquet = tmp_path / "d.parquet"
    pl.DataFrame(rows).write_parquet(parquet)
    js = tmp_path / "d.json"
    js.write_text(json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]))
    with semql.connect() as c:
        sources = {
            "from_polars": pl.DataFrame(rows),
            "from_pandas": pd.DataFrame(rows),
            "from_arrow": pl.DataFrame(rows).to_arrow(),
            "from_csv": str(csv),
            "from_parquet": parquet,
            "from_json": str(js),
            "from_relation": c.duckdb.sql("SELECT * FROM (VALUES (1, 'x'), (2, 'y')) v(a, b)"),
            "from_other_db": duckdb.connect().sql(
                "SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y'"
            ),
        }
        for name, source in sources.items():
            c.register(name, source)
            got = c.query(f"SELECT a, b FROM {name} ORDER BY a")
            assert got.rows() == [(1, "x"), (2, "y")], name


def test_register_errors(tmp_path):
    with semql.connect() as c:
        with pytest.raises(semql.ExecutionError, match="file not found"):
            c.register("x", str(tmp_path / "missing.csv"))
        (tmp_path / "f.xyz").write_text("1")
        with pytest.raises(semql.BindError, match="unknown file type"):
            c.register("x", str(tmp_path / "f.xyz"))
        with pytest.raises(semql.BindError, match="cannot register"):
            c.register("x", object())


def test_file_database_persists(tmp_path):
    path = str(tmp_path / "db.duckdb")
    with semql.connect(path) as c:
        c.query("CREATE TABLE k AS SELECT 42 AS v")
    with semql.connect(path, read_only=True) as c:
        assert c.query("SELECT v FROM k")["v"][0] == 42


def test_unknown_option_is_rejected(con):
    with pytest.raises(semql.BindError, match="unknown option"):
        con.query("SELECT 1", turbo=True)


@pytest.mark.parametrize(
    "sql, params, words",
    [
        ("SELECT * FROM q WHERE id = ? AND LLMMap('q', txt)", [1, 2], "params has 2 values"),
        ("SELECT * FROM q WHERE id IN (?, ?) AND LLMMap('q', txt)", [1], "more '?'"),
        ("SELECT * FROM q WHERE id = $2 AND LLMMap('q', txt)", [1], "no value for parameter $2"),
        ("SELECT * FROM q WHERE id = $k AND LLMMap('q', txt)", {"j": 1}, "parameter $k"),
    ],
)
def test_parameters_and_values_must_match(con, sql, params, words):
    """As in DuckDB: a value left over or a placeholder without one is an error, not a
    silent shift of every later value."""
    con.query("CREATE TABLE q AS SELECT 1 AS id, 'x' AS txt")
    with pytest.raises(semql.BindError, match=re.escape(words)):
        con.query(sql, params)
    with pytest.raises(semql.SemQLError):
        con.query(sql.split(" AND ")[0], params)  # the same slip without an LM call
