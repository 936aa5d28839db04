"""SQL without LM functions runs unchanged and gives exactly DuckDB's result."""

from __future__ import annotations

import duckdb
import pytest

import semql

SETUP = [
    "CREATE TABLE emp AS SELECT * FROM (VALUES (1, 'ann', 'eng', 120.5, DATE '2020-01-05', NULL),"
    " (2, 'bob', 'eng', 99.0, DATE '2021-03-01', 1), (3, 'cy', 'ops', 75.25, DATE '2019-07-30', 1),"
    " (4, 'dee', 'ops', 80.0, DATE '2022-11-11', 3), (5, 'eve', 'hr', NULL, DATE '2023-02-28', 1))"
    " t(id, name, dept, salary, hired, boss)",
    "CREATE TABLE dept AS SELECT * FROM (VALUES ('eng', 'Engineering', 3), "
    "('ops', 'Operations', 2), ('fin', 'Finance', 1)) t(code, title, floor)",
]

QUERIES = [
    "SELECT * FROM emp ORDER BY id",
    "SELECT name, salary FROM emp WHERE salary > 80 ORDER BY salary DESC",
    "SELECT dept, count(*) AS n, avg(salary) AS a FROM emp GROUP BY dept ORDER BY dept",
    "SELECT dept, sum(salary) FROM emp GROUP BY ALL HAVING sum(salary) > 100 ORDER BY 1",
    "SELECT e.name, d.title FROM emp e JOIN dept d ON e.dept = d.code ORDER BY e.id",
    "SELECT e.name, d.title FROM emp e LEFT JOIN dept d ON e.dept = d.code ORDER BY e.id",
    "SELECT d.title, e.name FROM emp e RIGHT JOIN dept d ON e.dept = d.code ORDER BY 1, 2",
    "SELECT e.name, d.title FROM emp e FULL OUTER JOIN dept d ON e.dept = d.code ORDER BY 1, 2",
    "SELECT a.name, b.name AS boss FROM emp a JOIN emp b ON a.boss = b.id ORDER BY a.id",
    "WITH s AS (SELECT dept, max(salary) m FROM emp GROUP BY dept) "
    "SELECT e.name FROM emp e JOIN s ON e.dept = s.dept AND e.salary = s.m ORDER BY 1",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    "SELECT name, row_number() OVER (PARTITION BY dept ORDER BY salary DESC) AS rk FROM emp "
    "ORDER BY name",
    "SELECT name, sum(salary) OVER (ORDER BY hired ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) "
    "FROM emp ORDER BY hired",
    "SELECT name, lag(name) OVER (ORDER BY id) FROM emp ORDER BY id",
    "SELECT name FROM emp WHERE salary > (SELECT avg(salary) FROM emp) ORDER BY 1",
    "SELECT name FROM emp e WHERE EXISTS (SELECT 1 FROM emp x WHERE x.boss = e.id) ORDER BY 1",
    "SELECT name FROM emp WHERE dept IN (SELECT code FROM dept WHERE floor > 1) ORDER BY 1",
    "SELECT * FROM (SELECT dept, count(*) c FROM emp GROUP BY dept) WHERE c > 1 ORDER BY dept",
    "SELECT dept FROM emp UNION SELECT code FROM dept ORDER BY 1",
    "SELECT dept FROM emp EXCEPT SELECT code FROM dept",
    "SELECT coalesce(salary, 0) AS s, CASE WHEN salary > 90 THEN 'high' ELSE 'low' END FROM emp "
    "ORDER BY id",
    "SELECT strftime(hired, '%Y') AS y, count(*) FROM emp GROUP BY y ORDER BY y",
    "SELECT list(name ORDER BY name) FROM emp",
    "SELECT dept, string_agg(name, ',' ORDER BY name) FROM emp GROUP BY dept ORDER BY dept",
    "SELECT * FROM emp QUALIFY row_number() OVER (PARTITION BY dept ORDER BY id) = 1 ORDER BY id",
    "SELECT name, salary FROM emp ORDER BY salary NULLS FIRST LIMIT 3 OFFSET 1",
    "SELECT count(DISTINCT dept), min(hired), max(hired) FROM emp",
    "PIVOT emp ON dept USING count(*) GROUP BY boss ORDER BY boss",
    "SELECT 'it''s' AS s, 1 + 2 * 3 AS x, [1, 2, 3] AS l, {'a': 1} AS st",
]


@pytest.fixture(scope="module")
def both():
    plain = duckdb.connect()
    con = semql.connect()
    for stmt in SETUP:
        plain.execute(stmt)
        con.query(stmt)
    yield plain, con
    con.close()
    plain.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_same_result_as_duckdb(both, sql):
    plain, con = both
    expected = plain.sql(sql).pl()
    got = con.query(sql)
    assert got.columns == expected.columns
    assert got.rows() == expected.rows()
    assert con.stats.lm_calls == 0


def test_at_least_twenty_queries():
    assert len(QUERIES) >= 20


def test_parameters_pass_through(both):
    _, con = both
    got = con.query("SELECT name FROM emp WHERE id = ? OR dept = ?", [1, "ops"])
    assert sorted(got["name"].to_list()) == ["ann", "cy", "dee"]


def test_ddl_and_dml_return_empty_frames(both):
    _, con = both
    assert con.query("CREATE TABLE tmp_x (a INT)").is_empty()
    con.query("INSERT INTO tmp_x VALUES (1), (2)")
    assert con.query("SELECT sum(a) AS s FROM tmp_x")["s"][0] == 3
    con.query("DROP TABLE tmp_x")
