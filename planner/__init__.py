"""Planning of SemQL queries: SQL AST -> a plan of relational and LM operators.

:func:`plan` is the one entry the face uses: binding and typing of the LM calls, the
rewrite rules (``rules/``, one a module), prompt layouts (``prefix/``), proxy choice and,
when asked, the cost model's estimates. The plan it returns is never changed afterwards:
executors read it and keep what happens at run time in their own state.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from semql.errors import BindError, SemQLError

from . import logical as L
from .binder import Catalog
from .builder import build_plan
from .cost import estimate_plan, note_index_builds
from .options import PlanOptions
from .physical import ModelProfile, attach_tasks
from .physical.compiler import PLAN_PREFIX, Choices, Compiled
from .prefix.layout import attach_layouts
from .proxy_choice import attach_proxies

__all__ = ["plan"]


def plan(
    ast: exp.Expression,
    sql: str,
    catalog: Catalog,
    options: PlanOptions,
    profile: Callable[[], ModelProfile],
    estimate: bool = False,
) -> L.QueryPlan:
    """The plan of one parsed statement (``sql`` is its text as written, for errors):
    the logical plan, with its physical plan (``.physical``: the stages the engine runs,
    before any run's choices; a run takes it with :meth:`Compiled.for_run`).

    ``profile`` gives the model's speeds (read only when the statement has LM work);
    ``estimate`` adds the cost model's figures (DuckDB counts per LM operator), for
    EXPLAIN. An estimate that fails for a reason other than the query itself being
    wrong is reported in the plan, never raised: estimates inform, they do not block.
    """
    out = build_plan(ast, sql, catalog, options)
    attach_layouts(out, catalog, options.prefix_order)
    attach_proxies(out, options)
    attach_tasks(out, options.calibration)
    if out.scopes:
        out.profile = profile()  # predicate_order ranks filters with it
    if out.has_lm:  # a statement without LM calls runs in DuckDB as written
        out.physical = Compiled(out, Choices(PLAN_PREFIX))
    if estimate:
        try:
            note_index_builds(out, catalog)
            if out.scopes:
                estimate_plan(out, catalog, out.profile)
        except BindError:
            raise  # the query itself is wrong: running it would fail the same way
        except SemQLError as err:
            out.fired.append(f"(no estimates: {err})")
    return out
