"""Output types (grammar specs, parsing) and the type-inference rules, table-driven."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlglot import exp

import semql
from semql.dialect import parse
from semql.grammar import type_names
from semql.grammar import types as T
from semql.grammar.inference import ColumnFacts, infer_type
from semql.planner.calls import is_lm_call

COLUMNS = {
    "stars": ColumnFacts("INTEGER", lambda: (1, 2, 3)),
    "price": ColumnFacts("DOUBLE", lambda: (1.5,)),
    "day": ColumnFacts("DATE", lambda: ()),
    "seen": ColumnFacts("TIMESTAMP WITH TIME ZONE", lambda: ()),
    "flag": ColumnFacts("BOOLEAN", lambda: (True, False)),
    "genre": ColumnFacts("VARCHAR", lambda: ("comedy", "drama")),
}


def lookup(col: exp.Column):
    return COLUMNS.get(col.name)


def infer(sql: str, **kwargs):
    call = next(n for n in parse(sql).walk() if is_lm_call(n))
    return infer_type(call, kwargs, lookup, "f")


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT * FROM t WHERE stars = LLMMap('q', x)", "int"),  # 1. typed column or cast
        ("SELECT LLMMap('q', x)::INT FROM t", "int (at most 9 digits)"),
        ("SELECT LLMMap('q', x)::BIGINT FROM t", "int"),
        ("SELECT LLMMap('q', x)::UTINYINT FROM t", "int (at most 2 digits, not negative)"),
        (
            "SELECT CAST(LLMMap('q', x) AS DECIMAL(5, 2)) + 1 FROM t",
            "float (at most 3 digits before the point, 2 after)",
        ),
        ("SELECT TRY_CAST(LLMMap('q', x) AS DATE) FROM t", "date"),
        ("SELECT LLMMap('q', x)::BOOLEAN FROM t", "bool"),
        ("SELECT LLMMap('q', x)::INT[] FROM t", "list[int (at most 9 digits)]{1,20}"),
        ("SELECT LLMMap('q', x)::VARCHAR[] FROM t", "list[str]{1,20}"),
        ("SELECT LLMMap('q', x)::VARCHAR FROM t", "str"),
        ("SELECT * FROM t WHERE LLMMap('q', x) > price", "float"),
        ("SELECT * FROM t WHERE LLMMap('q', x) = day", "date"),
        ("SELECT * FROM t WHERE LLMMap('q', x) > seen", "timestamp (date, optional time)"),
        ("SELECT * FROM t WHERE LLMMap('q', x) = flag", "bool"),
        ("SELECT * FROM t WHERE LLMMap('q', x) = TRUE", "bool"),  # 2. literals
        ("SELECT * FROM t WHERE LLMMap('q', x) > 5", "int"),
        ("SELECT * FROM t WHERE LLMMap('q', x) < 3.5", "float"),
        ("SELECT * FROM t WHERE LLMMap('q', x) = 'yes'", "str"),
        ("SELECT * FROM t ORDER BY LLMMap('q', x)", "float"),  # 3. numeric context
        ("SELECT avg(LLMMap('q', x)) FROM t", "float"),
        ("SELECT LLMMap('q', x) + 1 FROM t", "float"),
        (
            "SELECT * FROM t WHERE genre IN LLMQA('q')",
            "list[one of (comedy, drama) [VARCHAR]]{1,20}",
        ),
        ("SELECT * FROM t WHERE stars IN LLMQA('q')", "list[int]{1,20}"),  # 4. lists
        ("SELECT * FROM t WHERE z IN LLMQA('q')", "list[str]{1,20}"),
        ("SELECT * FROM t WHERE genre = LLMMap('q', x)", "one of (comedy, drama) [VARCHAR]"),  # 5.
        ("SELECT * FROM t WHERE LLMMap('q', x) IN ('a', 'b')", "one of (a, b) [VARCHAR]"),
        ("SELECT LLMMap('q', x) AS v FROM t WHERE v > 2", "int"),  # 6. alias
        ("SELECT * FROM t WHERE LLMMap('q', x)", "bool"),  # 7. boolean positions
        ("SELECT * FROM t WHERE a = 1 OR LLMMap('q', x)", "bool"),
        ("SELECT * FROM t WHERE NOT LLMMap('q', x)", "bool"),
        ("SELECT CASE WHEN LLMMap('q', x) THEN 1 END FROM t", "bool"),
        ("SELECT LLMMap('q', x) FROM t", "str"),  # 8. free text
    ],
)
def test_context_rules(sql, expected):
    assert str(infer(sql).type) == expected


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Is the review clearly positive?", "bool"),
        ("does the critic recommend it ?", "bool"),
        ("Is it positive or negative?", "str"),  # either-or, not yes/no
        ("Is it good? Explain why.", "str"),  # more than one question
        ("What is the sentiment?", "str"),
        ("Island?", "str"),
    ],
)
def test_yes_no_questions_are_bool_where_the_sql_says_nothing(question, expected):
    call = next(n for n in parse("SELECT LLMMap('q', x) FROM t").walk() if is_lm_call(n))
    assert str(infer_type(call, {}, lookup, "f", question).type) == expected
    typed = next(n for n in parse("SELECT LLMMap('q', x) + 1 FROM t").walk() if is_lm_call(n))
    # where the SQL wants a number, a yes/no question is its probability of yes
    numeric = "probability of yes [DOUBLE]" if expected == "bool" else "float"
    assert str(infer_type(typed, {}, lookup, "f", question).type) == numeric
    assert str(infer_type(call, {"return_type": "str"}, lookup, "f", question).type) == "str"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sum(LLMMap('q', x)) FROM t",
        "SELECT avg(LLMMap('q', x)) FROM t",
        "SELECT * FROM t WHERE LLMMap('q', x) > 0.8",
        "SELECT * FROM t ORDER BY LLMMap('q', x) DESC",
    ],
)
def test_a_yes_no_call_where_the_sql_wants_a_number_is_the_probability_of_yes(sql):
    question = next(n for n in parse(sql).walk() if is_lm_call(n))
    for kwargs, how in (({}, "a yes/no question"), ({"return_type": "bool"}, "return_type=")):
        got = infer_type(question, kwargs, lookup, "f", "Is the review positive?")
        assert got.type == T.BoolType(expected=True) and got.type.duckdb_type == "DOUBLE"
        assert got.reason.startswith(how) and got.reason.endswith("probability of yes")
    # in a boolean position, compared with TRUE, or in CASE WHEN it stays a decision
    for where in ("WHERE LLMMap('q', x)", "WHERE LLMMap('q', x) = TRUE"):
        call = next(n for n in parse(f"SELECT * FROM t {where}").walk() if is_lm_call(n))
        assert infer_type(call, {}, lookup, "f", "Is it good?").type == T.BoolType()


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"return_type": "int"}, "int"),
        ({"return_type": "list[int]", "quantifier": "{2,3}"}, "list[int]{2,3}"),
        ({"options": ("a", "b")}, "one of (a, b) [VARCHAR]"),
        ({"options": (1, 2), "quantifier": "+"}, "list[one of (1, 2) [BIGINT]]{1,20}"),
        ({"regex": "[0-9]{3}"}, "regex /[0-9]{3}/"),
        ({"quantifier": "{3}"}, "list[str]{3,3}"),
    ],
)
def test_explicit_types_win(kwargs, expected):
    assert str(infer("SELECT LLMMap('q', x) FROM t", **kwargs).type) == expected


@pytest.mark.parametrize(
    "sql, kwargs",
    [
        ("SELECT * FROM t WHERE LLMMap('q', x) = TRUE", {"return_type": "int"}),
        ("SELECT * FROM t WHERE LLMMap('q', x) > 3", {"options": ("a", "b")}),
        ("SELECT * FROM t WHERE LLMMap('q', x) = day", {"return_type": "str"}),
        ("SELECT LLMMap('q', x)::INT FROM t", {"options": ("a", "b")}),
    ],
)
def test_conflicts(sql, kwargs):
    from semql.grammar.inference import InferenceConflict

    with pytest.raises(InferenceConflict):
        infer(sql, **kwargs)


def test_explicit_compatible_with_context():
    assert (
        str(infer("SELECT * FROM t WHERE LLMMap('q', x) > 3", options=(1, 2, 5)).type)
        == "one of (1, 2, 5) [BIGINT]"
    )


@pytest.mark.parametrize(
    "out_type, text, value",
    [
        (T.BoolType(), " yes", True),
        (T.BoolType(), " no", False),
        (T.BoolType(expected=True), " yes", 1.0),  # decoded, not scored: a certain yes
        (T.IntType(), " -42", -42),
        (T.FloatType(), " 3.25", 3.25),
        (T.DateType(), " 2024-02-29", dt.date(2024, 2, 29)),
        (T.OptionsType((1, 2, 3)), " 2", 2),
        (T.OptionsType(("a b", "c")), " a b", "a b"),
        (T.ListType(T.StrType(), 1, 3), ' ["x", "y"]', ["x", "y"]),
        (T.ListType(T.IntType(), 0, 3), " []", []),
        (T.StrType(), ' "hello there"', "hello there"),
        (T.StrType(), ' " say \\"hi\\" "', 'say "hi"'),
        (T.JsonType('{"type":"object"}'), ' {"a": 1}', '{"a":1}'),
    ],
)
def test_parse(out_type, text, value):
    assert out_type.parse(text) == value


def test_duckdb_types():
    assert T.OptionsType((1, 2)).duckdb_type == "BIGINT"
    assert T.OptionsType((1, 2.5)).duckdb_type == "DOUBLE"
    assert T.OptionsType(("a",)).duckdb_type == "VARCHAR"
    assert T.BoolType().duckdb_type == "BOOLEAN"
    assert T.BoolType(expected=True).duckdb_type == "DOUBLE"
    assert T.ListType(T.IntType()).duckdb_type == "BIGINT[]"
    assert T.JsonType().duckdb_type == "JSON"


@pytest.mark.parametrize("bad", ["", "**", "{3", "{4,2}", "{a}"])
def test_bad_quantifier(bad):
    with pytest.raises(ValueError):
        type_names.parse_quantifier(bad)


def test_type_names():
    assert isinstance(type_names.type_from_name("BOOLEAN"), T.BoolType)
    assert isinstance(type_names.type_from_name("int[]"), T.ListType)
    assert isinstance(type_names.type_from_name('{"type": "array"}'), T.JsonType)
    with pytest.raises(ValueError, match="unknown return_type"):
        type_names.type_from_name("colour")


def test_every_grammar_compiles():
    from semql.grammar.compile import to_xgrammar

    for t in (
        T.BoolType(),
        T.IntType(),
        T.FloatType(),
        T.StrType(),
        T.DateType(),
        T.OptionsType(('say "hi"', "back\\slash", "new\nline")),
        T.ListType(T.OptionsType(("a", "b")), 2, 2),
        T.ListType(T.FloatType(), 0, 4),
        T.JsonType('{"type":"object","properties":{"n":{"type":"number"}}}'),
        T.RegexType("[A-Z]{2}[0-9]"),
    ):
        assert to_xgrammar(t.spec()) is not None


def test_type_error_surfaces_through_the_api():
    with semql.connect() as con:
        con.duckdb.execute("CREATE TABLE t AS SELECT 1 AS x")
        with pytest.raises(semql.TypeInferenceError, match="quantifier"):
            con.plan("SELECT LLMMap('q', x, quantifier='{9,2}') FROM t")


def test_json_strings_are_bounded_visibly_and_a_schema_can_lift_the_bound():
    import json

    from semql.grammar.json_schema import DEFAULT_MAX_STRING
    from semql.grammar.types import JsonType

    free = JsonType(json.dumps({"type": "object", "properties": {"name": {"type": "string"}}}))
    assert f"at most {DEFAULT_MAX_STRING} characters" in str(free)
    assert json.loads(free.spec().source)["properties"]["name"]["maxLength"] == DEFAULT_MAX_STRING
    long = JsonType(json.dumps({"type": "string", "maxLength": 3000}))
    assert "at most" not in str(long)  # the schema's own bound, nothing hidden
    assert json.loads(long.spec().source)["maxLength"] == 3000
    assert long.token_budget() >= 1500  # room for 3,000 characters


def _call_types(sql: str) -> list[str]:
    with semql.connect() as con:
        con.duckdb.execute("CREATE TABLE t AS SELECT 'fine' AS txt, 1 AS id")
        return sorted(str(c.output) for c in con.plan(sql).calls)


@pytest.mark.parametrize(
    "sql, types",
    [
        # a yes/no call's decision beside its probability: two calls, each read its own way
        (
            "SELECT LLMMap('Is it good?', txt) AS b, LLMMap('Is it good?', txt) + 0 AS p FROM t",
            ["bool", "probability of yes [DOUBLE]"],
        ),
        (
            "SELECT sum(LLMMap('Is it good?', txt)), "
            "count(*) FILTER (WHERE LLMMap('Is it good?', txt)) FROM t",
            ["bool", "probability of yes [DOUBLE]"],
        ),
        (
            "SELECT id FROM t WHERE LLMMap('Is it good?', txt) "
            "ORDER BY LLMMap('Is it good?', txt) DESC",
            ["bool", "probability of yes [DOUBLE]"],
        ),
        # uses that want one type share one call
        (
            "SELECT LLMMap('Is it good?', txt) AS b FROM t WHERE LLMMap('Is it good?', txt)",
            ["bool"],
        ),
        # a use whose place says nothing takes the type of the use that does, wherever it is
        (
            "SELECT LLMMap('Rate it 1-5', txt) AS r FROM t WHERE LLMMap('Rate it 1-5', txt) > 3",
            ["int"],
        ),
        (
            "SELECT LLMMap('Rate it 1-5', txt) AS r FROM t ORDER BY LLMMap('Rate it 1-5', txt)",
            ["float"],
        ),
    ],
)
def test_repeats_of_a_call_share_it_only_where_their_places_want_one_type(sql, types):
    assert _call_types(sql) == types


@pytest.mark.parametrize(
    "cast", ["TINYINT", "UTINYINT", "SMALLINT", "INTEGER", "UINTEGER", "BIGINT"]
)
def test_a_cast_to_an_integer_type_bounds_the_answer_to_what_the_type_holds(cast):
    """Every answer the grammar allows fits the cast's type: the largest and smallest
    allowed numbers cast in DuckDB, and one digit more is outside the grammar."""
    import duckdb

    from semql.grammar.check import violation
    from semql.grammar.compile import to_xgrammar

    got = infer(f"SELECT LLMMap('q', x)::{cast} FROM t").type
    pattern = got.spec().source
    largest = int("9" * got.digits)
    for value in (largest, -largest if got.signed else 0):
        assert re.fullmatch(pattern, f" {value}") and violation(got, f" {value}") is None
        duckdb.sql(f"SELECT {value}::BIGINT::{cast}").fetchall()  # fits: no error
    assert not re.fullmatch(pattern, f" {largest}9") and violation(got, f" {largest}9")
    assert got.signed or not re.fullmatch(pattern, " -1")
    assert to_xgrammar(got.spec()) is not None
    assert to_xgrammar(T.ListType(got, 1).spec()) is not None
    assert violation(T.ListType(got, 1), f" [{largest}9]")


@pytest.mark.parametrize("cast", ["DECIMAL(4,1)", "DECIMAL(3,3)", "DECIMAL(10,0)", "DECIMAL"])
def test_a_cast_to_a_decimal_bounds_the_digits_before_and_after_the_point(cast):
    """The longest number the grammar allows casts to DECIMAL(p, s); one digit more before
    the point is outside it."""
    import duckdb

    from semql.grammar.check import violation

    got = infer(f"SELECT LLMMap('q', x)::{cast} FROM t").type
    whole = "9" * got.int_digits or "0"
    longest = whole + ("." + "9" * got.frac_digits if got.frac_digits else "")
    assert re.fullmatch(got.spec().source, f" -{longest}") and not violation(got, f" {longest}")
    duckdb.sql(f"SELECT -{longest}::DOUBLE::{cast}").fetchall()  # fits: no error
    assert violation(got, f" 1{longest}") and violation(T.ListType(got, 1), f" [1{longest}]")


def test_a_timestamp_cast_asks_for_a_date_and_an_optional_time():
    from semql.grammar.check import violation
    from semql.grammar.compile import to_xgrammar

    got = infer("SELECT LLMMap('q', x)::TIMESTAMP FROM t").type
    assert got == T.DateType(time=True) and got.duckdb_type == "TIMESTAMP"
    assert to_xgrammar(got.spec()) is not None
    for ok in (" 2001-03-03", " 2001-03-03 12:30", " 2024-02-29 23:59:59"):
        assert violation(got, ok) is None
        assert got.parse(ok) == dt.datetime.fromisoformat(ok.strip())
    for bad in (" 2001-03-03 24:00", " 2001-02-30", " 2001-03-03T12:30"):
        assert violation(got, bad)
    assert violation(T.DateType(), " 2001-03-03 12:30")  # a DATE takes no time


@pytest.mark.parametrize("target", ["UUID", "TIME", "INTERVAL", "JSON", "DATE[]"])
def test_a_cast_no_grammar_fits_is_refused_at_planning_but_try_cast_is_not(target):
    """Free text would fail such a cast on every row, after all the LM work."""
    with semql.connect() as con:
        con.duckdb.execute("CREATE TABLE t AS SELECT 'fine' AS x")
        with pytest.raises(semql.TypeInferenceError, match=f"cast to {re.escape(target)}"):
            con.plan(f"SELECT LLMMap('When?', x)::{target} FROM t")
        tried = con.plan(f"SELECT TRY_CAST(LLMMap('When?', x) AS {target}) FROM t")
        assert str(tried.calls[0].output) == "str"
