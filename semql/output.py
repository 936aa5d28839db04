"""How query results are written: aligned tables cut to the terminal, CSV, JSON, markdown."""

from __future__ import annotations

import shutil

import polars as pl

MODES = ("table", "csv", "json", "markdown")
MAX_TABLE_ROWS = 40  # longer results show their head and tail, with a note


def terminal_width(default: int = 120) -> int:
    return shutil.get_terminal_size((default, 24)).columns


def format_frame(df: pl.DataFrame, mode: str = "table", width: int | None = None) -> str:
    """The whole text to print for one result (always ends with a newline)."""
    if mode == "csv":
        return df.write_csv()
    if mode == "json":
        return df.write_json() + "\n"
    width = width or terminal_width()
    rows = df.height if mode == "markdown" else MAX_TABLE_ROWS
    with pl.Config(
        tbl_rows=rows,
        tbl_cols=-1,
        fmt_str_lengths=max(20, width // 2),
        tbl_width_chars=width,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=mode == "markdown",
        tbl_formatting="MARKDOWN" if mode == "markdown" else "UTF8_FULL_CONDENSED",
    ):
        text = str(df)
    noun = "row" if df.height == 1 else "rows"
    note = f"({df.height} {noun})"
    if mode == "table" and df.height > MAX_TABLE_ROWS:
        note = (
            f"({df.height} rows, {MAX_TABLE_ROWS} shown; .mode csv and .output FILE write them all)"
        )
    return f"{text}\n{note}\n"
