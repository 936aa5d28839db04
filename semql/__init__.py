"""SemQL: SQL with language-model functions on DuckDB, answered by small local GGUF models.

import semql
con = semql.connect()                      # in-memory DuckDB, bundled Gemma 3 270M
con.register("Reviews", "reviews.csv")
df = con.query("SELECT reviewId FROM Reviews "
               "WHERE {{LLMMap('Is the review positive?', reviewText)}} LIMIT 5")
"""

from __future__ import annotations

from .executors.runtimes.thread_policy import quiet_openmp_waits

quiet_openmp_waits()  # before llama.cpp's OpenMP runtime loads (thread_policy.py)

from .connection import Connection, connect  # noqa: E402
from .errors import (
    BindError,
    ClusterError,
    ExecutionError,
    LimitExceeded,
    ModelError,
    ParseError,
    SafetyError,
    SemQLError,
    TypeInferenceError,
)
from .executors.lm.stats import OperatorStats, QueryStats
from .planner.options import RANK_BY, REWRITES, PlanOptions
from .planner.physical.task import CALIBRATIONS
from .sample import load_sample

__version__ = "0.1.0"

_default: Connection | None = None


def default_connection() -> Connection:
    """The connection ``semql.query`` uses: in-memory, bundled model, sample data loaded."""
    global _default
    if _default is None:
        _default = connect()
        load_sample(_default)
    return _default


def query(sql: str, params=None, **options):
    """Run ``sql`` on the default connection (with the sample tables Reviews and Movies)."""
    return default_connection().query(sql, params, **options)


__all__ = [
    "CALIBRATIONS",
    "RANK_BY",
    "REWRITES",
    "BindError",
    "ClusterError",
    "Connection",
    "ExecutionError",
    "LimitExceeded",
    "ModelError",
    "OperatorStats",
    "ParseError",
    "PlanOptions",
    "QueryStats",
    "SafetyError",
    "SemQLError",
    "TypeInferenceError",
    "connect",
    "default_connection",
    "load_sample",
    "query",
]
