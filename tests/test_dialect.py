"""The dialect front end: braces, bare calls, keyword arguments, parse errors with places."""

from __future__ import annotations

import pytest
from sqlglot import exp

import semql
from semql.dialect import has_lm_call, parse, strip_braces
from semql.planner.calls import is_lm_call, split_arguments


def test_braces_blanked_keeping_positions():
    sql = "SELECT {{LLMMap('q', x)}} FROM t"
    out = strip_braces(sql)
    assert len(out) == len(sql)
    assert out == "SELECT   LLMMap('q', x)   FROM t"


def test_braces_inside_strings_and_comments_are_kept():
    sql = "SELECT '{{not a call}}' AS s -- {{ comment\nFROM t /* }} */"
    assert strip_braces(sql) == sql
    assert not has_lm_call("SELECT 'LLMMap(' FROM t")
    assert has_lm_call("select llmmap('q', x) from t")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT {'a': {'b': 1}} AS s",  # a DuckDB struct literal closes two braces at once
        "SELECT [{'a': 1}, {'a': {'b': {'c': 2}}}] AS l",
        "SELECT $$it's {{ }}$$ AS d",  # dollar-quoted: no escapes, no braces
        "SELECT $tag$ a $$ }} $tag$ AS d",
        "SELECT E'it\\'s }}' AS e",  # E-string: backslash escapes
        "SELECT e'\\\\' AS e, $1 AS p",  # an escaped backslash; a parameter
    ],
)
def test_duckdb_literals_pass_through_unchanged(sql):
    assert strip_braces(sql) == sql
    assert not has_lm_call(sql)


def test_duckdb_literals_run(sample_con):
    row = sample_con.query("SELECT {'a': {'b': 1}} AS s, $$it's$$ AS d, E'it\\'s' AS e").row(0)
    assert row == ({"a": {"b": 1}}, "it's", "it's")


def test_struct_literals_inside_and_around_lm_blocks():
    sql = "SELECT {'x': {{LLMMap('q', {'a': {'b': y}})}}} FROM t"
    assert strip_braces(sql) == "SELECT {'x':   LLMMap('q', {'a': {'b': y}})  } FROM t"


@pytest.mark.parametrize(
    "sql, line, col, words",
    [
        ("SELECT $$it's FROM t", 1, 8, "unterminated dollar-quoted string"),
        ("SELECT E'it\\' FROM t", 1, 9, "unterminated string"),
        ("SELECT {{LLMMap('q', x) FROM t", 1, 8, "never closed"),
        ("SELECT LLMMap('q', x)}} FROM t", 1, 22, "without a matching"),
        ("SELECT 1\nFROM t WHERE {{ {{LLMMap('q', x)}} }}", 2, 17, "nested"),
        ("SELECT 'abc FROM t", 1, 8, "unterminated string"),
    ],
)
def test_brace_and_quote_errors_have_line_and_column(sql, line, col, words):
    with pytest.raises(semql.ParseError) as info:
        strip_braces(sql)
    err = info.value
    assert (err.line, err.column) == (line, col)
    assert words in str(err)
    assert "^" in str(err)


def test_sqlglot_parse_error_has_line_column_and_caret():
    sql = "SELECT LLMMap('q', x)\nFROM t WHERE AND x > 1"
    with pytest.raises(semql.ParseError) as info:
        parse(sql)
    assert info.value.line == 2
    assert info.value.column > 0
    lines = str(info.value).splitlines()
    assert lines[1].strip() == "FROM t WHERE AND x > 1"
    assert lines[2].strip() == "^"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT LLMMap('q', t.c) FROM t",
        "SELECT {{LLMMap('q', c)}} AS a FROM t",
        "SELECT * FROM t WHERE {{LLMMap('q', c)}}",
        "SELECT * FROM t WHERE x = 1 AND LLMMap('q', c) = TRUE",
        "SELECT * FROM t WHERE x = 1 OR LLMMap('q', c)",
        "SELECT * FROM t ORDER BY LLMMap('q', c)",
        "SELECT LLMMap('q', c) AS g, count(*) FROM t GROUP BY g",
        "SELECT * FROM t WHERE c IN {{LLMQA('q', (SELECT c FROM t))}}",
        "SELECT * FROM (VALUES (LLMQA('q'))) v(a)",
        "SELECT * FROM a JOIN b ON {{LLMJoin(a.x, b.y, join_criteria='same')}}",
        "WITH w AS (SELECT * FROM t WHERE LLMMap('q', c)) SELECT * FROM w",
        "SELECT * FROM (SELECT c FROM t WHERE LLMMap('q', c)) s",
        "SELECT * FROM t WHERE x IN (SELECT x FROM t WHERE LLMMap('q', c))",
        "SELECT LLMMap('q', 'Title: ' || t.a || ' ' || t.b) FROM t",
    ],
)
def test_every_placement_parses_to_an_lm_call(sql):
    ast = parse(sql)
    calls = [n for n in ast.walk() if is_lm_call(n)]
    assert len(calls) == 1


def test_keyword_argument_spellings():
    for sql in (
        "SELECT LLMMap('q', c, options=('a','b'), quantifier='+') FROM t",
        "SELECT LLMMap('q', c, options := ('a','b'), quantifier := '+') FROM t",
    ):
        call = next(n for n in parse(sql).walk() if is_lm_call(n))
        positional, keywords = split_arguments(call)
        assert len(positional) == 2
        assert set(keywords) == {"options", "quantifier"}
        assert isinstance(keywords["options"], exp.Tuple)


def test_unknown_keyword_is_a_bind_error_naming_it():
    call = next(
        n for n in parse("SELECT LLMMap('q', c, color='red') FROM t").walk() if is_lm_call(n)
    )
    with pytest.raises(semql.BindError, match="unknown argument 'color'"):
        split_arguments(call)


def test_multiple_statements_rejected_with_lm():
    with pytest.raises(semql.ParseError, match="one statement"):
        parse("SELECT LLMMap('q', c) FROM t; SELECT 1")
