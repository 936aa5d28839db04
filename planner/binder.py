"""Binding of one statement's LM calls against the catalog: each call's arguments
checked and evaluated, its row fields named, and its output type inferred from the SQL
around it (grammar/inference.py). Identical calls in one SELECT bind to one LMCall for
each type their places want (a yes/no call's decision and its probability are two)."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from semql.errors import BindError, TypeInferenceError
from semql.grammar.inference import ColumnFacts, InferenceConflict, Inferred, infer_type
from semql.grammar.types import MAX_OPTIONS, OptionsType, StrType

from .calls import (
    CANONICAL_NAMES,
    Field,
    LMCall,
    field_name,
    is_lm_call,
    literal_value,
    split_arguments,
)
from .options import accuracy_value
from .physical.task import calibration_value
from .retrieval import bind_retrieval, k_value, method_value
from .scope_sql import conjuncts


class Catalog(Protocol):
    """What the planner may ask the database (implemented over DuckDB by the connection)."""

    def columns(self, table: str) -> dict[str, str] | None:
        """Lower-case column name -> SQL type, or None for an unknown table."""

    def distinct_values(self, table: str, column: str, limit: int) -> tuple:
        """Up to ``limit`` distinct non-null values of a column, in a stable order."""

    def query_column(self, sql: str) -> list:
        """The first column of an LM-free query."""


def calls_in(node: exp.Expression) -> list[exp.Anonymous]:
    return [n for n in node.walk() if is_lm_call(n)]


def owner_select(node: exp.Expression) -> exp.Expression | None:
    return node.find_ancestor(exp.Select)


class Binder:
    """Binds LM calls of one statement against the catalog."""

    def __init__(self, catalog: Catalog, scopes: list[Scope]):
        self.catalog = catalog
        self.scope_of = {id(s.expression): s for s in scopes}
        self.calls: dict[tuple[int, str, int], LMCall] = {}
        # per call text in a SELECT: each use's type group and type
        self._uses: dict[tuple[int, str], dict[int, tuple[int, Inferred | None]]] = {}

    # -- columns -----------------------------------------------------------------------

    def _table_of(self, col: exp.Column) -> tuple[str, str] | None:
        select = owner_select(col)
        scope = self.scope_of.get(id(select)) if select is not None else None
        if scope is None:
            return None
        name = col.name.lower()
        sources = scope.sources
        if col.table:
            candidates = [sources.get(col.table)]
        else:
            candidates = list(sources.values())
        for source in candidates:
            if isinstance(source, exp.Table):
                cols = self.catalog.columns(source.name)
                if cols and name in cols:
                    return source.name, name
        return None

    def column_facts(self, col: exp.Column) -> ColumnFacts | None:
        found = self._table_of(col)
        if found is None:
            return None
        table, name = found
        sql_type = self.catalog.columns(table)[name]
        return ColumnFacts(
            sql_type, lambda: self.catalog.distinct_values(table, name, MAX_OPTIONS + 1)
        )

    # -- arguments ---------------------------------------------------------------------

    def _options(self, node: exp.Expression, fn: str) -> tuple:
        if isinstance(node, exp.Column):
            found = self._table_of(node)
            if found is None:
                raise BindError(f"{fn}: options={node.sql()} does not name a table column")
            values = self.catalog.distinct_values(found[0], found[1], MAX_OPTIONS + 1)
        elif isinstance(node, exp.Subquery) or isinstance(node, exp.Select):
            values = [
                v for v in self.catalog.query_column(node.sql(dialect="duckdb")) if v is not None
            ]
        else:
            values = literal_value(node, fn, "options")
            if not isinstance(values, tuple):
                values = (values,)
        values = tuple(dict.fromkeys(values))
        if not values:
            raise BindError(f"{fn}: options= is empty")
        if len(values) > MAX_OPTIONS:
            raise BindError(f"{fn}: options= has more than {MAX_OPTIONS} values")
        return values

    def _kwargs(self, fn: str, keywords: dict[str, exp.Expression]) -> dict:
        out: dict = {}
        for key, node in keywords.items():
            if key == "options":
                out[key] = self._options(node, fn)
            elif key == "examples":
                value = literal_value(node, fn, "examples")
                if not isinstance(value, tuple):
                    raise BindError(
                        f"{fn}: examples= must be tuples (field values..., answer), "
                        f"got {node.sql()}"
                    )
                rows = value if value and isinstance(value[0], tuple) else (value,)
                if not all(isinstance(r, tuple) and len(r) >= 2 for r in rows):
                    raise BindError(
                        f"{fn}: examples= must be tuples (field values..., answer), "
                        f"got {node.sql()}"
                    )
                out[key] = list(rows)
            elif key == "context":
                out[key] = node
            elif key == "calibration":
                try:
                    out[key] = calibration_value(
                        literal_value(node, fn, key), f"{fn}: calibration="
                    )
                except TypeError as err:
                    raise BindError(str(err)) from None
            elif key in ("k", "retrieval"):
                check = k_value if key == "k" else method_value
                try:
                    out[key] = check(literal_value(node, fn, key), f"{fn}: {key}=")
                except TypeError as err:
                    raise BindError(str(err)) from None
            elif key == "accuracy":
                try:
                    out[key] = accuracy_value(literal_value(node, fn, key), f"{fn}: accuracy=")
                except TypeError as err:
                    raise BindError(str(err)) from None
            else:
                value = literal_value(node, fn, key)
                if not isinstance(value, str):
                    raise BindError(f"{fn}: {key}= must be a string, got {node.sql()}")
                out[key] = value
        return out

    @staticmethod
    def _text(node: exp.Anonymous) -> tuple[int, str]:
        """A call as written in one SELECT: its repeats there read the same prompts."""
        return id(owner_select(node)), node.sql(dialect="duckdb", normalize_functions=False)

    def _slot(self, node: exp.Anonymous) -> tuple[int, str, int] | None:
        """The call's text and the group of its uses ``node`` belongs to (None before the
        text is bound): one LMCall a group."""
        use = self._uses.get(self._text(node), {}).get(id(node))
        return None if use is None else (*self._text(node), use[0])

    def bound(self, node: exp.Anonymous) -> LMCall | None:
        """The LMCall already bound for ``node``, if any (no new occurrence recorded)."""
        slot = self._slot(node)
        return None if slot is None else self.calls.get(slot)

    def bind(self, node: exp.Anonymous) -> LMCall:
        """The LMCall of ``node``; an error in its arguments carries where it starts."""
        try:
            return self._bind(node)
        except BindError as err:
            if not err.line and err.offset is None:
                err.offset = node.meta.get("start")
            raise

    def _bind(self, node: exp.Anonymous) -> LMCall:
        text = self._text(node)
        new = None
        if text not in self._uses:
            new = self._new_call(node, text[1])
            self._uses[text] = self._group_uses(new, node)
        group, inferred = self._uses[text][id(node)]
        slot = (*text, group)
        call = self.calls.get(slot)
        if call is None:
            if new is None:  # another type of a bound call: its prompts, read another way
                bound = next(c for key, c in self.calls.items() if key[:2] == text)
                new = replace(bound, id=len(self.calls), nodes=[])
            call = new
            if inferred is not None:
                call.output, call.type_reason = inferred.type, inferred.reason
                _check_example_answers(call)
            self.calls[slot] = call
        if not any(n is node for n in call.nodes):
            call.nodes.append(node)
        return call

    def _new_call(self, node: exp.Anonymous, key: str) -> LMCall:
        """The call with its arguments checked and evaluated (once for all its repeats)."""
        fn = CANONICAL_NAMES[str(node.this).upper()]
        positional, keywords = split_arguments(node)
        kwargs = self._kwargs(fn, keywords)
        if fn == "LLMJoin":
            return self._bind_join(node, key, positional, kwargs)
        return self._bind_map_or_qa(node, fn, key, positional, kwargs)

    def _group_uses(
        self, call: LMCall, node: exp.Anonymous
    ) -> dict[int, tuple[int, Inferred | None]]:
        """Each use of the call in its SELECT: the group of uses that want the same type,
        and that type. A use whose place says nothing (free text) joins the first use that
        does; uses that want different types (a yes/no call's decision in the WHERE, its
        probability in a SUM) are calls of their own, so each reads its answer as its place
        asks."""
        owner = owner_select(node)
        uses = [
            n
            for n in (owner.walk() if owner is not None else [node])
            if is_lm_call(n) and owner_select(n) is owner and self._text(n) == self._text(node)
        ]
        if not any(n is node for n in uses):
            uses.append(node)
        if call.function == "LLMJoin":
            return {id(n): (0, None) for n in uses}
        inferred = [(n, self._infer(call, n)) for n in uses]
        types: list = []
        for _, found in inferred:
            if not found.fallback and found.type not in types:
                types.append(found.type)
        if not types:  # free text everywhere: one call
            return {id(n): (0, found) for n, found in inferred}
        chosen = {t: next(f for _, f in inferred if f.type == t and not f.fallback) for t in types}
        return {
            id(n): (0, chosen[types[0]]) if found.fallback else (types.index(found.type), found)
            for n, found in inferred
        }

    def _bind_map_or_qa(self, node, fn, key, positional, kwargs) -> LMCall:
        if not positional:
            raise BindError(f"{fn}: the first argument must be the question (a string)")
        question = literal_value(positional[0], fn, "the question (first argument)")
        if not isinstance(question, str):
            raise BindError(f"{fn}: the question (first argument) must be a string")
        fields: list[Field] = []
        context: list[exp.Expression] = []
        taken: set[str] = set()
        for arg in positional[1:]:
            if fn == "LLMQA":
                context.append(arg)
            elif arg.find(exp.Select) is not None:
                raise BindError(f"{fn}: a row field cannot be a subquery: {arg.sql()}")
            else:
                fields.append(Field(field_name(arg, taken), arg))
        if "context" in kwargs:
            context.append(kwargs.pop("context"))
        if fn == "LLMMap" and not fields:
            raise BindError(f"{fn}: needs at least one column to read, e.g. {fn}('q', t.col)")
        retrieval = bind_retrieval(fn, kwargs, context)
        if retrieval is not None and calls_in(retrieval.source):
            raise BindError(f"{fn}: the context to search cannot itself call an LM function")
        if fn == "LLMMap":
            context = []  # its context is searched per row, never put whole in a prompt
        call = LMCall(len(self.calls), fn, key, [], question, fields, kwargs, context)
        call.retrieval = retrieval
        return call

    def _bind_join(self, node, key, positional, kwargs) -> LMCall:
        if len(positional) != 2:
            raise BindError("LLMJoin: needs exactly two columns, LLMJoin(left.col, right.col)")
        join = node.find_ancestor(exp.Join)
        if join is None or not any(n is node for n in conjuncts(join.args.get("on"))):
            raise BindError("LLMJoin: must be a condition of JOIN ... ON")
        criteria = (
            kwargs.get("join_criteria") or "Match each left value to the right value it refers to."
        )
        fields = [Field("left", positional[0]), Field("right", positional[1])]
        call = LMCall(len(self.calls), "LLMJoin", key, [], criteria, fields, kwargs)
        call.output = StrType()
        call.type_reason = "one of the right side's values"
        return call

    def _infer(self, call: LMCall, node: exp.Expression) -> Inferred:
        """The type one use of the call wants (grammar/inference.py)."""
        try:
            return infer_type(node, call.kwargs, self.column_facts, call.label, call.question)
        except InferenceConflict as err:
            raise TypeInferenceError(str(err)) from None
        except ValueError as err:
            raise TypeInferenceError(f"{call.label}: {err}") from None


def _check_example_answers(call: LMCall) -> None:
    """An example answering outside a closed set would show the model an answer its
    grammar forbids (and no label could be scored for it): the user's slip, named here."""
    if not isinstance(call.output, OptionsType):
        return
    labels = call.output.labels()
    for k, example in enumerate(call.kwargs.get("examples") or (), 1):
        if call.output.render(example[-1]) not in labels:
            raise BindError(
                f"{call.function}: example {k} answers {example[-1]!r}, which is not one of the "
                f"options ({', '.join(labels)})"
            )
