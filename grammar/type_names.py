"""Output types named in SQL: ``return_type='int'``, ``'list[str]'``, a quantifier
(``'*'``, ``'{2,4}'``), a JSON schema, or a DuckDB column's type."""

from __future__ import annotations

import json
import re

from .types import (
    MAX_LIST_ITEMS,
    BoolType,
    DateType,
    FloatType,
    IntType,
    JsonType,
    ListType,
    OutputType,
    StrType,
)

_QUANTIFIER_RE = re.compile(r"^\s*(\*|\+|\{\s*(\d+)\s*\}|\{\s*(\d+)\s*,\s*(\d+)\s*\})\s*$")


def parse_quantifier(text: str) -> tuple[int, int]:
    """'*' '+' '{n}' '{n,m}' -> (min, max) item counts; ValueError when malformed."""
    m = _QUANTIFIER_RE.match(text or "")
    if not m:
        raise ValueError(f"quantifier {text!r} is not one of '*', '+', '{{n}}', '{{n,m}}'")
    if m.group(1) == "*":
        return 0, MAX_LIST_ITEMS
    if m.group(1) == "+":
        return 1, MAX_LIST_ITEMS
    if m.group(2) is not None:
        n = int(m.group(2))
        return n, n
    lo, hi = int(m.group(3)), int(m.group(4))
    if lo > hi:
        raise ValueError(f"quantifier {text!r} has min > max")
    return lo, hi


_NAMED_TYPES = {
    "bool": BoolType,
    "boolean": BoolType,
    "int": IntType,
    "integer": IntType,
    "bigint": IntType,
    "float": FloatType,
    "double": FloatType,
    "number": FloatType,
    "str": StrType,
    "string": StrType,
    "text": StrType,
    "varchar": StrType,
    "date": DateType,
}


def type_from_name(name: str, quantifier: str | None = None) -> OutputType:
    """``return_type='int'`` (and friends, 'list[int]', 'int[]') -> an OutputType.

    A name that is not a type but parses as a JSON object is a JSON schema.
    Raises ValueError for anything else.
    """
    text = name.strip()
    if text.startswith("{"):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"return_type is not a valid JSON schema: {err}") from None
        return JsonType(text)
    lowered = text.lower()
    m = re.fullmatch(r"list\[(\w+)\]|(\w+)\[\]", lowered)
    if m:
        item = type_from_name(m.group(1) or m.group(2))
        lo, hi = parse_quantifier(quantifier or "+")
        return ListType(item, lo, hi)
    if lowered not in _NAMED_TYPES:
        known = ", ".join(sorted({"bool", "int", "float", "str", "date", "list[T]"}))
        raise ValueError(f"unknown return_type {name!r}; expected one of {known} or a JSON schema")
    base = _NAMED_TYPES[lowered]()
    if quantifier:
        lo, hi = parse_quantifier(quantifier)
        return ListType(base, lo, hi)
    return base


def type_from_sql_type(sql_type: str) -> OutputType | None:
    """The output type for a DuckDB column type, or None for text (handled as options)."""
    t = sql_type.upper()
    if t == "BOOLEAN":
        return BoolType()
    if t in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    ):
        return IntType()
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return FloatType()
    if t == "DATE":
        return DateType()
    if t.startswith("TIMESTAMP"):  # TIMESTAMP, _S, _MS, _NS, WITH TIME ZONE
        return DateType(time=True)
    return None
