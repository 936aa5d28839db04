"""The shipped sample data: SemBench movie reviews (labels removed) and movies."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

HIDDEN_COLUMNS = ("scoreSentiment", "reviewState", "originalScore")


def sample_dir() -> Path:
    return Path(str(files("semql.sembench").joinpath("data", "movie")))


def load_sample(con) -> list[str]:
    """Register ``Reviews`` (without its label columns) and ``Movies`` on a Connection."""
    folder = sample_dir()
    hidden = ", ".join(f'"{c}"' for c in HIDDEN_COLUMNS)
    con.duckdb.execute(
        f"CREATE OR REPLACE TEMP TABLE Reviews AS SELECT * EXCLUDE ({hidden}) "
        f"FROM read_csv_auto('{folder / 'Reviews.csv'}')"
    )
    movies = folder / "Movies.csv"
    con.duckdb.execute(
        f"CREATE OR REPLACE TEMP TABLE Movies AS SELECT * FROM read_csv_auto('{movies}')"
    )
    return ["Reviews", "Movies"]
