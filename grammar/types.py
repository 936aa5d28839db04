"""Output types of LM calls: what the model may write, how to read it, what DuckDB stores.

Each type is a small immutable value that knows three things:

* ``spec()``: a :class:`GrammarSpec` (EBNF, regex or JSON schema) that admits exactly the
  texts that parse into the type. Runtimes compile it (xgrammar in-process, or send it
  to an HTTP server); keeping it as plain data lets both share one definition.
* ``parse(text)``: the Python value of a text the grammar admitted. Because the grammar
  is exact, parsing never fails on constrained output.
* ``duckdb_type``: the SQL type of the column the values land in.

Every grammar starts with one space: prompts end with ``Answer:`` and tokenizers glue
the space to the next word (" yes"), which measured better than ending prompts in a space.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field

from .json_schema import DEFAULT_MAX_STRING, bounded_schema, open_strings, string_chars

MAX_LIST_ITEMS = 20  # bound for '*' and '+' so that generation always terminates
MAX_OPTIONS_IN_PROMPT = 50  # more options are enforced by the grammar but not listed
MAX_OPTIONS = 1000  # a text column with more distinct values is free text, not options


@dataclass(frozen=True)
class GrammarSpec:
    """A grammar as data. ``kind`` is 'ebnf', 'regex' or 'json_schema'."""

    kind: str
    source: str


_EBNF_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def ebnf_string(text: str) -> str:
    """Quote ``text`` as an EBNF string literal (xgrammar / GBNF escaping)."""
    return '"' + "".join(_EBNF_ESCAPES.get(ch, ch) for ch in text) + '"'


class OutputType:
    """Base of all output types."""

    name: str = "?"
    duckdb_type: str = "VARCHAR"

    def spec(self) -> GrammarSpec:
        raise NotImplementedError

    def parse(self, text: str):
        raise NotImplementedError

    def render(self, value) -> str:
        """How a value of this type is written in a prompt (few-shot answers)."""
        return str(value)

    def hint(self) -> str:
        """A short instruction that tells the model the answer format."""
        return ""

    def labels(self) -> list[str] | None:
        """For closed sets: every admissible answer text (after the leading space)."""
        return None

    def token_budget(self) -> int:
        """Most output tokens a complete answer can need (grammars here are bounded)."""
        return 64

    def __str__(self) -> str:
        return self.name


def _strip(text: str) -> str:
    return text[1:] if text.startswith(" ") else text


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
        return float(_strip(text) == "yes") if self.expected else _strip(text) == "yes"

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


@dataclass(frozen=True)
class IntType(OutputType):
    """An integer of at most ``digits`` digits, negative only if ``signed``: a cast to a
    narrower SQL type (``::INT``, ``::TINYINT``, ``::UINTEGER``) bounds it so that every
    answer fits, instead of one answer past the type's range failing the whole query."""

    digits: int = 18  # every 18-digit number fits a BIGINT
    signed: bool = True
    name = "int"
    duckdb_type = "BIGINT"

    def spec(self) -> GrammarSpec:
        sign = "-?" if self.signed else ""
        return GrammarSpec("regex", rf" {sign}(0|[1-9][0-9]{{0,{self.digits - 1}}})")

    def __str__(self) -> str:
        if (self.digits, self.signed) == (18, True):
            return self.name
        bound = f"at most {self.digits} digits" + ("" if self.signed else ", not negative")
        return f"{self.name} ({bound})"

    def parse(self, text: str) -> int:
        return int(_strip(text))

    def hint(self) -> str:
        return "Answer with an integer."

    def token_budget(self) -> int:
        return 16


@dataclass(frozen=True)
class FloatType(OutputType):
    """A decimal number of at most ``int_digits`` digits before the point and
    ``frac_digits`` after it: a cast to ``DECIMAL(p, s)`` bounds it to what the type
    holds, as IntType is bounded by a narrower integer cast."""

    int_digits: int = 15
    frac_digits: int = 6
    name = "float"
    duckdb_type = "DOUBLE"

    def spec(self) -> GrammarSpec:
        whole = "0" if self.int_digits == 0 else f"(0|[1-9][0-9]{{0,{self.int_digits - 1}}})"
        frac = rf"(\.[0-9]{{1,{self.frac_digits}}})?" if self.frac_digits else ""
        return GrammarSpec("regex", f" -?{whole}{frac}")

    def __str__(self) -> str:
        if (self.int_digits, self.frac_digits) == (15, 6):
            return self.name
        return (
            f"{self.name} (at most {self.int_digits} digits before the point, "
            f"{self.frac_digits} after)"
        )

    def parse(self, text: str) -> float:
        return float(_strip(text))

    def hint(self) -> str:
        return "Answer with a number."

    def token_budget(self) -> int:
        return 24


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
        value = json.loads(_strip(text))
        if not isinstance(value, str):
            raise ValueError("not a JSON string")
        return value.strip()

    def render(self, value) -> str:
        return json.dumps(str(value), ensure_ascii=False)

    def hint(self) -> str:
        return "Answer briefly, in double quotes."

    def token_budget(self) -> int:
        return max(self.max_chars // 3, 8)


_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999: no year 0
_DATE_RE = (
    r" (" + _YEAR + r"-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
    r"|" + _LEAP_YEAR + r"-02-29)"
)


_TIME_RE = r"( ([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)"


@dataclass(frozen=True)
class DateType(OutputType):
    """A calendar date; with ``time`` (a cast to TIMESTAMP), optionally a time of day
    after it, which the cast reads as midnight where the answer gives none."""

    time: bool = False
    name = "date"

    @property
    def duckdb_type(self) -> str:  # type: ignore[override]
        return "TIMESTAMP" if self.time else "DATE"

    def spec(self) -> GrammarSpec:
        return GrammarSpec("regex", _DATE_RE + (_TIME_RE + "?" if self.time else ""))

    def parse(self, text: str) -> _dt.date:
        if self.time:
            return _dt.datetime.fromisoformat(_strip(text))
        return _dt.date.fromisoformat(_strip(text))

    def hint(self) -> str:
        if self.time:
            return "Answer with a date as YYYY-MM-DD, and a time as HH:MM if it is known."
        return "Answer with a date as YYYY-MM-DD."

    def __str__(self) -> str:
        return "timestamp (date, optional time)" if self.time else self.name


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
        label = _strip(text)
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
        if isinstance(self.item, IntType):
            sign = '"-"? ' if self.item.signed else ""
            return f'{sign}("0" | [1-9] [0-9]{{0,{self.item.digits - 1}}})'
        if isinstance(self.item, FloatType):
            item = self.item
            whole = f'("0" | [1-9] [0-9]{{0,{item.int_digits - 1}}})'
            whole = whole if item.int_digits else '"0"'
            frac = f' ("." [0-9]{{1,{item.frac_digits}}})?' if item.frac_digits else ""
            return f'"-"? {whole}{frac}'
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
        items = json.loads(_strip(text))
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
        return json.dumps(json.loads(_strip(text)), separators=(",", ":"))

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
        return _strip(text)

    def token_budget(self) -> int:
        return 128

    def __str__(self) -> str:
        return f"regex /{self.pattern}/"
