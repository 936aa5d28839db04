"""Output types of LM calls: what the model may write, how to read it, what DuckDB stores.

Each type is a small immutable value that knows three things:

* ``spec()``: a :class:`GrammarSpec` (EBNF, regex or JSON schema) that admits exactly the
  texts that parse into the type. Runtimes compile it (xgrammar in-process, or send it
  to an HTTP server); keeping it as plain data lets both share one definition.
* ``parse(text)``: the Python value of a text the grammar admitted. Because the grammar
  is exact, parsing never fails on constrained output.
* ``duckdb_type``: the SQL type of the column the values land in.

The base class is in output_type.py, numbers and dates in numbers_and_dates.py; every
type is imported from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .json_schema import DEFAULT_MAX_STRING, bounded_schema, open_strings, string_chars
from .numbers_and_dates import DateType, FloatType, IntType
from .output_type import GrammarSpec, OutputType, ebnf_string, strip_space

__all__ = [  # every output type, here where callers import them
    "BoolType", "DateType", "FloatType", "GrammarSpec", "IntType", "JsonType", "ListType",
    "OptionsType", "OutputType", "RegexType", "StrType",
]  # fmt: skip

MAX_LIST_ITEMS = 20  # bound for '*' and '+' so that generation always terminates
MAX_OPTIONS_IN_PROMPT = 50  # more options are enforced by the grammar but not listed
MAX_OPTIONS = 1000  # a text column with more distinct values is free text, not options


@dataclass(frozen=True)
class BoolType(OutputType):
    """A yes/no answer; ``expected``: the calibrated probability of yes, a DOUBLE."""

    expected: bool = False
    name = "bool"

    @property
    def duckdb_type(self) -> str:  # type: ignore[override]
        return "DOUBLE" if self.expected else "BOOLEAN"

    def spec(self) -> GrammarSpec:
        return GrammarSpec("ebnf", 'root ::= " " ("yes" | "no")')

    def parse(self, text: str) -> bool | float:
        return float(strip_space(text) == "yes") if self.expected else strip_space(text) == "yes"

    def render(self, value) -> str:
        return "yes" if _truthy(value) else "no"

    def hint(self) -> str:
        return "Answer yes or no."

    def labels(self) -> list[str]:
        return ["yes", "no"]

    def __str__(self) -> str:
        return "probability of yes [DOUBLE]" if self.expected else "bool"


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "t", "y")
    return bool(value)


# A JSON string of one or more characters, none a control character, quote or
# backslash: without escapes every quote token the runtime prefers to end a long answer
# really ends it (an escaped \" would not). Free-text answers and list[str] items.
_JSON_STR = r'"\"" [^\0-\x1f"\\]+ "\""'


@dataclass(frozen=True)
class StrType(OutputType):
    """Free text, answered as one JSON string.

    Prompt fields are JSON strings, so a model reading them opens its answer with a
    quote too; making that the grammar gives it a way to end (the closing quote, which
    past half the token budget the runtime prefers) instead of running on to the end of
    the line, and the answer decodes without stray quotes.
    """

    max_chars: int = 240
    name = "str"
    duckdb_type = "VARCHAR"

    def spec(self) -> GrammarSpec:
        # The length bound is the token budget, not the grammar: a bounded repetition
        # of a character class compiles 100x slower in xgrammar on a 262k vocabulary.
        return GrammarSpec("ebnf", f'root ::= " " {_JSON_STR}')

    def parse(self, text: str) -> str:
        value = json.loads(strip_space(text))
        if not isinstance(value, str):
            raise ValueError("not a JSON string")
        return value.strip()

    def render(self, value) -> str:
        return json.dumps(str(value), ensure_ascii=False)

    def hint(self) -> str:
        return "Answer briefly, in double quotes."

    def token_budget(self) -> int:
        return max(self.max_chars // 3, 8)


@dataclass(frozen=True)
class OptionsType(OutputType):
    """Exactly one of a closed set of values (strings, numbers or booleans).

    ``expected``: a numeric scale where the SQL wants a number (AVG, ORDER BY,
    arithmetic): the answer is the expected value under the model's calibrated label
    distribution (executors/lm/closed_set.py), a DOUBLE, not one label.
    """

    values: tuple = ()
    expected: bool = False
    name = "options"

    def __post_init__(self):
        if not self.values:
            raise ValueError("options need at least one value")
        texts = [self.render(v) for v in self.values]
        if len(set(texts)) != len(texts):
            raise ValueError("options must be distinct")

    @property
    def duckdb_type(self) -> str:  # type: ignore[override]
        return "DOUBLE" if self.expected else _sql_type_of_values(self.values)

    @property
    def numeric(self) -> bool:
        return _sql_type_of_values(self.values) in ("BIGINT", "DOUBLE")

    def render(self, value) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value)) if not isinstance(value, bool) else str(value)
        return str(value)

    def labels(self) -> list[str]:
        return [self.render(v) for v in self.values]

    def spec(self) -> GrammarSpec:
        alts = " | ".join(ebnf_string(t) for t in self.labels())
        return GrammarSpec("ebnf", f'root ::= " " ({alts})')

    def parse(self, text: str):
        label = strip_space(text)
        for value in self.values:
            if self.render(value) == label:
                return float(value) if self.expected else value
        raise ValueError(f"{label!r} is not one of the options")

    def hint(self) -> str:
        if len(self.values) > MAX_OPTIONS_IN_PROMPT:
            return "Answer with one of the allowed values."
        return "Answer with one of: " + ", ".join(self.labels()) + "."

    def __str__(self) -> str:
        shown = ", ".join(self.labels()[:5]) + (", ..." if len(self.values) > 5 else "")
        if self.expected:
            return f"expected value of ({shown}) [DOUBLE]"
        return f"one of ({shown}) [{self.duckdb_type}]"


def _sql_type_of_values(values) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "BIGINT"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "DOUBLE"
    return "VARCHAR"


@dataclass(frozen=True)
class ListType(OutputType):
    """A JSON array of ``item`` values, with between ``min_items`` and ``max_items``."""

    item: OutputType = field(default_factory=StrType)
    min_items: int = 1
    max_items: int = MAX_LIST_ITEMS
    name = "list"

    @property
    def duckdb_type(self) -> str:  # type: ignore[override]
        return f"{self.item.duckdb_type}[]"

    def _item_rule(self) -> str:
        if isinstance(self.item, OptionsType):
            return " | ".join(ebnf_string(json.dumps(v)) for v in self.item.values)
        if isinstance(self.item, (IntType, FloatType)):
            return self.item.ebnf_item()
        if isinstance(self.item, BoolType):
            return '"true" | "false"'
        return _JSON_STR

    def spec(self) -> GrammarSpec:
        lo, hi = self.min_items, self.max_items
        if hi == 0:
            body = '"[]"'
        else:
            rest = ""
            if hi > 1:
                rest_lo = max(lo - 1, 0)
                rest = f' ("," " " item){{{rest_lo},{hi - 1}}}'
            items = f"item{rest}"
            body = f'"[" {items} "]"' if lo >= 1 else f'"[" ({items})? "]"'
        return GrammarSpec("ebnf", f'root ::= " " {body}\nitem ::= {self._item_rule()}')

    def parse(self, text: str) -> list:
        items = json.loads(strip_space(text))
        if isinstance(self.item, OptionsType):
            return [self.item.parse(" " + self.item.render(v)) for v in items]
        if isinstance(self.item, IntType):
            return [int(v) for v in items]
        if isinstance(self.item, FloatType):
            return [float(v) for v in items]
        return list(items)

    def render(self, value) -> str:
        return json.dumps(list(value))

    def token_budget(self) -> int:
        return 8 + self.max_items * (40 if isinstance(self.item, StrType) else 12)

    def hint(self) -> str:
        if self.min_items == self.max_items:
            count = f"exactly {self.min_items}"
        else:
            count = f"{self.min_items} to {self.max_items}"
        return f"Answer with a JSON list of {count} items."

    def __str__(self) -> str:
        return f"list[{self.item}]{{{self.min_items},{self.max_items}}}"


@dataclass(frozen=True)
class JsonType(OutputType):
    """A JSON value that validates against a JSON schema (given as its JSON text)."""

    schema: str = "{}"
    name = "json"
    duckdb_type = "JSON"

    def spec(self) -> GrammarSpec:
        return GrammarSpec("json_schema", json.dumps(bounded_schema(json.loads(self.schema))))

    def parse(self, text: str) -> str:
        return json.dumps(json.loads(strip_space(text)), separators=(",", ":"))

    def render(self, value) -> str:
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    def hint(self) -> str:
        return "Answer with JSON."

    def token_budget(self) -> int:
        """Room for every bounded string at two characters a token, plus the structure."""
        return max(384, 128 + string_chars(bounded_schema(json.loads(self.schema))) // 2)

    def __str__(self) -> str:
        shown = f"json{self.schema if len(self.schema) < 60 else ''}"
        if open_strings(json.loads(self.schema)):
            shown += f" (strings without maxLength: at most {DEFAULT_MAX_STRING} characters)"
        return shown


@dataclass(frozen=True)
class RegexType(OutputType):
    """A string that matches a user regex completely."""

    pattern: str = ".*"
    name = "regex"
    duckdb_type = "VARCHAR"

    def spec(self) -> GrammarSpec:
        return GrammarSpec("regex", f" (?:{self.pattern})")

    def parse(self, text: str) -> str:
        return strip_space(text)

    def token_budget(self) -> int:
        return 128

    def __str__(self) -> str:
        return f"regex /{self.pattern}/"
