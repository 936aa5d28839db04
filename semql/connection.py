"""The public Connection: DuckDB database + one lazily loaded LM runtime + result cache."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from semql import explain_text
from semql.executors.lm.budget import Budget
from semql.executors.lm.lm_executor import LMExecutor, Progress
from semql.executors.lm.result_cache import ResultCache
from semql.executors.lm.stats import QueryStats
from semql.executors.operators.duckdb_errors import duckdb_error
from semql.executors.operators.engine import Engine
from semql.executors.operators.run_state import QueryRun
from semql.executors.proxy.embedding_views import EmbeddingStore
from semql.executors.proxy.embeddings import make_embedders
from semql.executors.runtimes.cpu_backend import parse_setting
from semql.executors.runtimes.runtime import is_remote, model_choice, open_runtime, placement_of
from semql.planner import logical as L
from semql.planner import plan as plan_statement
from semql.planner.options import PlanOptions
from semql.planner.physical import DEFAULT_PROFILE, ModelProfile

from .catalog import DuckDBCatalog, quote_ident
from .dialect import bind_params, has_lm_call, is_blank, locate_bind_error, parse, strip_braces
from .errors import BindError, ExecutionError, LimitExceeded, ParseError, SemQLError
from .files import create_from_file
from .progress import progress_for


@contextmanager
def _names_located_in(sql: str) -> Iterator[None]:
    """Re-raise a :class:`BindError` pointing at its name in ``sql``, the user's query."""
    try:
        yield
    except BindError as err:
        raise locate_bind_error(err, sql) from None


_EXPLAIN_RE = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)


class Connection:
    """A DuckDB database you can query with SQL and LM functions.

    The model loads on the first query that needs it and is shared by all LM operators
    of the connection. ``optimize=False`` or per-rewrite keywords (``pushdown``,
    ``predicate_order``, ``dedup``, ``early_exit``, ``prefix_reorder``) set the defaults
    for every query; ``query(..., **options)`` overrides them for one query.
    """

    def __init__(
        self,
        database: str = ":memory:",
        *,
        model: str | list[str] | None = None,
        cache: bool | str = True,
        read_only: bool = False,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        extra_bufts: bool | str | None = None,
        batch_rows: int | None = None,
        runtime=None,
        progress: Progress | bool | None = None,
        embedder: str = "auto",
        safe: bool = False,
        max_concurrency: int = 4,
        server: dict | None = None,
        cluster: str | None = None,
        actors: int | None = None,
        **options,
    ):
        self.options = PlanOptions.from_kwargs(**options)
        self._embedder_spec = embedder
        self._embedders: list | None = None
        self._embed_store: EmbeddingStore | None = None
        self._read_only = read_only
        self.database = str(database)
        try:
            self._con = duckdb.connect(self.database, read_only=read_only)
        except duckdb.Error as err:
            raise ExecutionError(f"cannot open database {self.database}: {err}") from None
        self.safe = safe
        if safe:
            for setting in SAFE_MODE:  # the last one locks the others in place
                self._con.execute(f"SET {setting}")
        self._model_arg = model
        self._runtime = runtime
        self._runtime_args = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "seed": seed,
            "extra_bufts": parse_setting(extra_bufts),  # a typo fails here, named
            "batch_rows": batch_rows,  # rows per decode in-process (None: the CPU's default)
        }
        self._max_concurrency = max_concurrency  # requests in flight per server endpoint
        # a server's options (http_runtime.SERVER_OPTIONS), checked when the model opens
        self._server_args = server
        # a Ray cluster for the LM work (ray_runtime.py): "auto", ray://HOST:PORT, or
        # $SEMQL_CLUSTER; ``actors`` of ``n_threads`` threads each (default one per CPU)
        self._cluster = {"cluster": cluster, "actors": actors}
        self._runtime_profile: ModelProfile | None = None
        self.progress = progress_for(progress)  # a line on stderr where it is a terminal
        self.stats = QueryStats()
        self.last_plan: L.QueryPlan | None = None
        self.last_run: QueryRun | None = None  # what happened when it ran
        self._cache = self._open_cache(cache, read_only)

    def _open_cache(self, cache: bool | str, read_only: bool) -> ResultCache:
        try:
            if cache is False or cache is None:
                return ResultCache(None)
            if isinstance(cache, (str, os.PathLike)) and not isinstance(cache, bool):
                return ResultCache(duckdb.connect(str(cache)))
            if self.database != ":memory:" and not read_only:
                return ResultCache(self._con.cursor())
            if self.database != ":memory:":  # read-only: read the file's cache, write none
                return ResultCache(duckdb.connect(":memory:"), read_from=self._con.cursor())
            return ResultCache(duckdb.connect(":memory:"))
        except duckdb.Error as err:
            raise ExecutionError(f"cannot open the result cache {cache}: {err}") from None

    # -- model -------------------------------------------------------------------------

    @property
    def runtime(self):
        """The LM runtime, loaded on first use.

        llama.cpp in-process for a GGUF path (or the bundled default); an OpenAI-compatible
        endpoint when the model is an http(s):// URL, with ``server=`` options (``flavor``,
        ``model``, ``chat``, ``api_key``, ``timeout``, ``retry_after``, ``label_scores``);
        Ray actors holding the GGUF with ``cluster=`` (or ``SEMQL_CLUSTER``).
        """
        if self._runtime is None:
            self._runtime = open_runtime(
                model_choice(self._model_arg),
                self._max_concurrency,
                self._server_args,
                **self._cluster,
                **self._runtime_args,
            )
        return self._runtime

    def profile(self) -> ModelProfile:
        """The model's measured speeds (the cost model's rates); defaults until measured.

        Measured once per model file on the first query that loads it, then stored; a
        server's are learnt from the queries run there (per endpoints and concurrency).
        """
        from semql.executors.runtimes.model_profile import profile_for, stored_profile

        if self._runtime is not None:
            if self._runtime_profile is None:  # read (or measured) once per loaded model
                self._runtime_profile = profile_for(self._runtime)
            return self._runtime_profile
        choice = model_choice(self._model_arg)
        if is_remote(choice):  # opening a server's runtime connects to nothing
            self._runtime_profile = profile_for(self.runtime)
            return self._runtime_profile
        from semql.executors.runtimes.model_files import resolve_model_path
        from semql.executors.runtimes.thread_policy import default_threads

        try:
            path = resolve_model_path(choice)
        except SemQLError:
            return DEFAULT_PROFILE  # the query itself will report the bad model path
        threads = self._runtime_args["n_threads"] or default_threads()
        return stored_profile(path, threads) or DEFAULT_PROFILE

    @property
    def model_path(self) -> str | None:
        return getattr(self._runtime, "path", None) or self._model_arg

    def set_model(self, model: str | None) -> None:
        """Use another GGUF from the next query on (None: the bundled default)."""
        old, self._runtime = self._runtime, None
        self._runtime_profile = None
        self._model_arg = model
        if old is not None:
            old.close()

    # -- data --------------------------------------------------------------------------

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection, for anything SemQL does not wrap."""
        return self._con

    def register(self, name: str, source) -> None:
        """Make ``source`` queryable as table ``name``.

        ``source``: a polars or pandas DataFrame, a pyarrow Table, a DuckDB relation, or a
        path to a CSV / TSV / Parquet / JSON file (loaded into a temp table).
        """
        if not isinstance(name, str) or not name:
            raise BindError("register: the table name must be a non-empty string")
        if isinstance(source, (str, os.PathLike)):
            self._register_file(name, Path(source))
            return
        if isinstance(source, duckdb.DuckDBPyRelation):
            source = source.to_arrow_table()
        if type(source).__module__.split(".")[0] not in ("polars", "pandas", "pyarrow"):
            raise BindError(
                f"register: cannot register {type(source).__name__} as {name!r}; expected a "
                f"DataFrame, an Arrow table, a DuckDB relation or a file path"
            )
        try:
            self._con.register(name, source)
        except duckdb.Error as err:
            raise duckdb_error(err) from None

    def _register_file(self, name: str, path: Path) -> None:
        create_from_file(self._con, "register", f"OR REPLACE TEMP TABLE {quote_ident(name)}", path)

    def load(self, path: str | os.PathLike, name: str | None = None) -> str:
        """Load a CSV / TSV / Parquet / JSON file into a new table (kept in a database file).

        ``name`` defaults to the file name without its extension. Returns the table name.
        """
        path = Path(path)
        name = name or re.sub(r"\W", "_", path.stem)
        if name.lower() in {t.lower() for t in self.tables()}:
            raise BindError(f"load: table {name!r} already exists; load {path} AS another name")
        create_from_file(self._con, "load", f"TABLE {quote_ident(name)}", path)
        return name

    def tables(self) -> list[str]:
        rows = self._con.execute("SHOW TABLES").fetchall()
        return [r[0] for r in rows]

    # -- queries -----------------------------------------------------------------------

    def _options(self, overrides: dict) -> PlanOptions:
        try:
            return PlanOptions.from_kwargs(self.options, **overrides)
        except TypeError as err:
            raise BindError(str(err)) from None

    def plan(self, sql: str, params=None, **options) -> L.QueryPlan:
        """The logical plan of ``sql`` with the cost model's estimates (without running it)."""
        with _names_located_in(sql):
            return self._plan(sql, params, options, estimate=True)

    def _plan(self, sql: str, params, options: dict, estimate: bool) -> L.QueryPlan:
        """Plan; the estimates (DuckDB counts per LM operator) only when they will be shown."""
        opts = self._options(options)
        text = strip_braces(sql)
        if is_blank(text):
            raise ParseError("empty query: nothing but whitespace and comments", sql)
        if not has_lm_call(text):
            return L.QueryPlan(statement=None, sql=text, options=opts)
        ast = parse(sql)
        if params is not None:
            ast = bind_params(ast, params)
        return plan_statement(ast, sql, DuckDBCatalog(self._con), opts, self.profile, estimate)

    def query(self, sql: str, params=None, **options) -> pl.DataFrame:
        """Run one statement; the result as a polars DataFrame (empty for DDL/DML)."""
        match = _EXPLAIN_RE.match(sql)
        if match and has_lm_call(strip_braces(sql)):
            text = self.explain(sql[match.end() :], analyze=bool(match.group(1)), **options)
            return pl.DataFrame({"plan": [text]})
        with _names_located_in(sql):
            plan = self._plan(sql, params, options, estimate=False)
            return self._run(plan, None if plan.has_lm else params)

    def _run(self, plan: L.QueryPlan, params) -> pl.DataFrame:
        self.last_plan, self.last_run = plan, None
        self.stats = QueryStats()
        opts = plan.options or self.options
        budget = Budget(
            opts.max_lm_calls, opts.max_prompt_tokens, opts.max_seconds, self._cache.enabled
        )
        executor = partial(self._lm_executor, budget, opts.calibration, opts.check_wording)
        engine = Engine(self._con, executor, self._proxy_parts)
        deadline = None
        if opts.max_seconds is not None:  # DuckDB's part too: interrupt it at the deadline
            deadline = threading.Timer(opts.max_seconds, self._con.interrupt)
            deadline.daemon = True
            deadline.start()
        try:
            try:
                frame = engine.run(plan, params, self.stats)
            finally:
                self.last_run = engine.last_run
            if plan.has_lm and self._runtime is not None and self._runtime_profile is not None:
                from semql.executors.runtimes.model_profile import learn_from_run

                self._runtime_profile = learn_from_run(
                    self._runtime, self._runtime_profile, self.stats
                )
            return frame
        except (SemQLError, duckdb.Error) as err:
            if (
                deadline is not None
                and deadline.finished.is_set()
                and not isinstance(err, LimitExceeded)
            ):
                raise budget.exceeded(f"max_seconds={opts.max_seconds:g}") from None
            if isinstance(err, SemQLError):
                raise
            raise duckdb_error(err) from None
        finally:
            if deadline is not None:
                deadline.cancel()
            getattr(self.progress, "clear", lambda: None)()  # no line left under an error

    def proxy_reports(self) -> list:
        """The proxy decisions of the last query (``ProxyReport``: sample, embedder,
        classifier, threshold, rows answered by proxy and LM, learning curve, or the
        reason the LM answered every row)."""
        if self.last_run is None:
            return []
        return list(self.last_run.proxy_reports.values())

    def _proxy_parts(self) -> tuple:
        """The embedding views' store (in the database file when writable, else in
        memory for this connection) and the embedders proxy models may use."""
        if self._embed_store is None:
            if self.database == ":memory:":
                self._embed_store = EmbeddingStore(duckdb.connect(":memory:"))
            elif self._read_only:  # the file's views read, new vectors kept in memory
                store = duckdb.connect(":memory:")
                self._embed_store = EmbeddingStore(store, read_from=self._con.cursor())
            else:
                self._embed_store = EmbeddingStore(self._con.cursor())
        if self._embedders is None:
            self._embedders = make_embedders(
                self._embedder_spec, self.model_path, self._runtime_args["extra_bufts"]
            )
        return self._embed_store, self._embedders, self._runtime_args["seed"]

    def _lm_executor(
        self,
        budget: Budget | None = None,
        calibration: str = PlanOptions.calibration,
        check_wording: bool = False,
    ) -> LMExecutor:
        return LMExecutor(
            self.runtime, self._cache, self.progress, budget, calibration, check_wording
        )

    def explain(self, sql: str, analyze: bool = False, **options) -> str:
        """The plan as a tree; with ``analyze=True`` the query runs and figures are shown."""
        plan = self.plan(sql, **options)
        if analyze:
            with _names_located_in(sql):
                self._run(plan, None)
        choice, cluster = model_choice(self._model_arg), self._cluster["cluster"]
        where = placement_of(self._runtime, choice, cluster)
        if not analyze:
            return explain_text.planned(plan, where)
        return explain_text.analyzed(plan, self.last_run, self.stats, where)

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        """Free the model and close the database (and the cache, if separate)."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
        self._cache.close()
        if self._embed_store is not None:
            self._embed_store.con.close()
        self._con.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Safe mode: no file system access (read_csv, COPY ... TO, ATTACH, extension files), no
# extension loading, and the configuration locked so SQL cannot turn them back on.
SAFE_MODE = (
    "enable_external_access = false",
    "autoinstall_known_extensions = false",
    "autoload_known_extensions = false",
    "lock_configuration = true",
)


def connect(database: str = ":memory:", **kwargs) -> Connection:
    """Open a SemQL connection. See :class:`Connection` for the keywords."""
    return Connection(database, **kwargs)
