"""Data files as tables: CSV, TSV, Parquet and JSON read by DuckDB's own readers, with
errors that name the file (and safe mode's refusal to read files said as such)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from .errors import BindError, ExecutionError, SafetyError

FILE_READERS = {
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".txt": "read_csv_auto",
    ".parquet": "read_parquet",
    ".json": "read_json_auto",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
}


def create_from_file(con: duckdb.DuckDBPyConnection, what: str, target: str, path: Path) -> None:
    """``CREATE <target> AS`` the rows of a data file, with errors naming the file."""
    if not path.exists():
        raise ExecutionError(f"{what}: file not found: {path}")
    reader = FILE_READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(FILE_READERS))
        raise BindError(f"{what}: unknown file type {path.suffix!r} of {path}; use {known}")
    literal = "'" + str(path).replace("'", "''") + "'"
    try:
        con.execute(f"CREATE {target} AS SELECT * FROM {reader}({literal})")
    except duckdb.PermissionException:
        raise SafetyError(f"{what}: refused in safe mode: cannot read files ({path})") from None
    except duckdb.Error as err:
        raise ExecutionError(f"{what}: cannot read {path}: {err}") from None
