"""Shared fixtures. Tests marked ``model`` use the real bundled GGUF through llama.cpp."""

from __future__ import annotations

import pytest
from sampled_rows import SAMPLE_ROWS

import semql


@pytest.fixture(scope="session")
def gemma_runtime():
    """The bundled Gemma 3 270M, loaded once for the whole session (greedy, seed 0)."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path

    runtime = LlamaRuntime(default_model_path(), seed=0)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def gemma_batched():
    """The bundled Gemma answering BATCH_ROWS rows per decode whatever the CPU's default
    (one row at a time on CPUs without AMX): the batched recipe is tested everywhere."""
    from semql.executors.runtimes.cpu_backend import BATCH_ROWS
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path

    runtime = LlamaRuntime(default_model_path(), seed=0, batch_rows=BATCH_ROWS)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def gemma_one_row():
    """The bundled Gemma with rows one at a time whatever the CPU's default (batched on
    CPUs with AMX): the shared-steps recipe of its generated rows is tested everywhere."""
    from semql.executors.runtimes.llama_runtime import LlamaRuntime
    from semql.executors.runtimes.model_files import default_model_path

    runtime = LlamaRuntime(default_model_path(), seed=0, batch_rows=1)
    yield runtime
    runtime.close()


@pytest.fixture()
def model_con(gemma_runtime):
    """A connection on the real bundled model with the sample tables, cache off."""
    con = semql.connect(runtime=gemma_runtime, cache=False, calibration_rows=SAMPLE_ROWS)
    semql.load_sample(con)
    yield con
    con._runtime = None  # the runtime is shared by the session; do not close it here
    con.close()


@pytest.fixture()
def sample_con():
    """A connection with the sample tables whose model is never loaded (planning only)."""
    con = semql.connect()
    semql.load_sample(con)
    yield con
    con.close()


@pytest.fixture()
def make_con():
    """Factory of connections on FakeLM (planner/rewrite unit tests only) with table ``r``."""
    import polars as pl

    from fake_lm import ROWS, WORDS, FakeLM

    made = []

    def factory(**options):
        lm = FakeLM()
        options.setdefault("cache", False)
        con = semql.connect(runtime=lm, **options)
        con.register(
            "r",
            pl.DataFrame(
                {
                    "id": list(range(ROWS)),
                    "movie": [f"m{i % 5}" for i in range(ROWS)],
                    "txt": [f"a {WORDS[i % len(WORDS)]} movie" for i in range(ROWS)],
                }
            ),
        )
        made.append(con)
        return con, lm

    yield factory
    for c in made:
        c.close()
