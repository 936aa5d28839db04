"""A scenario is a folder: scenario.json (tables, metric per query), Qn.sql, gold/Qn.sql.

Adding a scenario means adding a folder under ``scenarios/``; the runner does not change.
The tables a query sees never contain the hidden label columns; the ground truth is the
gold SQL run by plain DuckDB on the labelled data (the same rows when sampled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import duckdb

from . import metrics


@dataclass
class QuerySpec:
    name: str
    sql: str
    gold_sql: str
    intent: str
    metric: dict


@dataclass
class Scenario:
    name: str
    folder: Path
    data: Path
    tables: dict
    queries: list[QuerySpec]

    def register(self, con, rows: int | None = None) -> None:
        """Register the visible tables (labels removed) on a SemQL connection."""
        for table, spec in self.tables.items():
            hidden = spec.get("hidden") or []
            exclude = f" EXCLUDE ({', '.join(hidden)})" if hidden else ""
            con.register(
                table, con.duckdb.sql(f"SELECT *{exclude} FROM ({self._source(table, spec, rows)})")
            )

    def _source(self, table: str, spec: dict, rows: int | None) -> str:
        path = str(self.data / spec["file"]).replace("'", "''")
        sql = f"SELECT * FROM read_csv_auto('{path}')"
        key = spec.get("sample_key")
        if rows is not None and key:
            # a deterministic sample: the same rows for the system and the ground truth
            sql += f" ORDER BY hash({key}), {key} LIMIT {int(rows)}"
        return sql

    def truth_connection(self, rows: int | None = None) -> duckdb.DuckDBPyConnection:
        """Plain DuckDB with the labelled tables, for the gold SQL."""
        con = duckdb.connect()
        for table, spec in self.tables.items():
            con.execute(f"CREATE TABLE {table} AS {self._source(table, spec, rows)}")
        return con

    def score(self, query: QuerySpec, result, truth_con: duckdb.DuckDBPyConnection) -> dict:
        """Quality metrics of ``result`` (a polars DataFrame) against the gold SQL."""
        gold = truth_con.sql(query.gold_sql).fetchall()
        m = query.metric
        kind = m["metric"]
        if kind == "f1":
            keys = m["key"]
            returned = [tuple(r) for r in result.select(keys).rows()]
            return metrics.f1_limit(returned, [tuple(r[: len(keys)]) for r in gold], m.get("limit"))
        if kind == "pairs_f1":
            returned = [metrics.unordered_pair(*r) for r in result.rows()]
            truth = [metrics.unordered_pair(*r) for r in gold]
            return metrics.f1_limit(returned, truth, m.get("limit"))
        if kind == "relative_error":
            value = result[m["column"]][0] if result.height else None
            return metrics.relative_error(value, gold[0][0])
        if kind == "group_counts":
            predicted = dict(result.select(m["group"], m["count"]).rows())
            return metrics.group_counts(predicted, dict(gold))
        if kind == "spearman":
            predicted = dict(result.select(m["key"], m["value"]).rows())
            return metrics.spearman(predicted, dict(gold))
        raise ValueError(f"unknown metric {kind!r} in scenario {self.name}")


def scenarios_root() -> Path:
    return Path(str(files("semql.sembench").joinpath("scenarios")))


def available() -> list[str]:
    return sorted(p.name for p in scenarios_root().iterdir() if (p / "scenario.json").exists())


def load(name: str, sql_dir: Path | None = None) -> Scenario:
    """Scenario ``name``; with ``sql_dir``, each query's SQL is ``sql_dir/Qn.sql`` (a wording
    of one's own, scored against the scenario's gold) instead of the scenario's."""
    folder = scenarios_root() / name
    manifest = folder / "scenario.json"
    if not manifest.exists():
        raise ValueError(f"unknown scenario {name!r}; available: {', '.join(available())}")
    spec = json.loads(manifest.read_text())
    queries = []
    for qname, metric in spec["queries"].items():
        sql_file = (sql_dir or folder) / f"{qname}.sql"
        if not sql_file.exists():
            raise ValueError(f"no SQL for query {qname} of scenario {name}: {sql_file} is missing")
        intent_file = folder / "gold" / f"{qname}.txt"
        queries.append(
            QuerySpec(
                name=qname,
                sql=sql_file.read_text(),
                gold_sql=(folder / "gold" / f"{qname}.sql").read_text(),
                intent=intent_file.read_text().strip() if intent_file.exists() else "",
                metric=metric,
            )
        )
    data = (scenarios_root().parent / spec["data"]).resolve()
    return Scenario(spec["name"], folder, data, spec["tables"], queries)
