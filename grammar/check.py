"""An oracle for generated text, written without the grammars it checks.

The grammar guarantee ("every constrained output is a valid value") is only as good as
the test that measures it. Re-parsing with ``OutputType.parse`` would share the
grammar's own assumptions, so this module states each type's valid texts again in
plain Python (regexes, ``json``, ``datetime``) and says what is wrong with a text.
Used by the stress tests and ``bench/grammar_stress.py``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re

from .numbers_and_dates import TIME_OF_DAY
from .types import (
    BoolType,
    DateType,
    FloatType,
    IntType,
    JsonType,
    ListType,
    OptionsType,
    OutputType,
    RegexType,
    StrType,
)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def violation(out_type: OutputType, text: str) -> str | None:
    """Why ``text`` is not a valid answer of ``out_type``, or None when it is."""
    if not text.startswith(" "):
        return "does not start with the answer's space"
    body = text[1:]
    if isinstance(out_type, BoolType):
        return None if body in ("yes", "no") else "not yes or no"
    if isinstance(out_type, OptionsType):
        return None if body in out_type.labels() else "not one of the options"
    if isinstance(out_type, IntType):
        return None if re.fullmatch(out_type.spec().source[1:], body) else "not an integer"
    if isinstance(out_type, FloatType):
        ok = re.fullmatch(out_type.spec().source[1:], body)
        return None if ok else "not a decimal number of the type's range"
    if isinstance(out_type, DateType):
        date, _, time = body.partition(" ")
        if time and not (out_type.time and re.fullmatch(TIME_OF_DAY, time)):
            return "not a time of day HH:MM(:SS)" if out_type.time else "not YYYY-MM-DD"
        return _date_violation(date)
    if isinstance(out_type, StrType):
        if not (len(body) >= 3 and body[0] == body[-1] == '"'):
            return "not a non-empty double-quoted string"
        try:
            value = json.loads(body)  # strict: raw control characters are errors
        except json.JSONDecodeError as err:
            return f"not a JSON string: {err}"
        if not isinstance(value, str) or "\n" in value:
            return "not one line of text"
        return None
    if isinstance(out_type, RegexType):
        return None if re.fullmatch(out_type.pattern, body) else "does not match the pattern"
    if isinstance(out_type, ListType):
        return _list_violation(out_type, body)
    if isinstance(out_type, JsonType):
        try:
            value = json.loads(body)
        except json.JSONDecodeError as err:
            return f"not JSON: {err}"
        return schema_violation(json.loads(out_type.schema), value, "$")
    return f"no check for type {out_type}"


def _date_violation(body: str) -> str | None:
    if not _DATE.fullmatch(body):
        return "not YYYY-MM-DD"
    try:
        _dt.date.fromisoformat(body)
    except ValueError:
        return "not a calendar date"
    return None


def _list_violation(out_type: ListType, body: str) -> str | None:
    try:
        items = json.loads(body)
    except json.JSONDecodeError as err:
        return f"not a JSON list: {err}"
    if not isinstance(items, list):
        return "not a JSON list"
    if not out_type.min_items <= len(items) <= out_type.max_items:
        return f"{len(items)} items, not {out_type.min_items} to {out_type.max_items}"
    for item in items:
        reason = _item_violation(out_type.item, item)
        if reason:
            return f"item {item!r}: {reason}"
    return None


def _item_violation(item_type: OutputType, item) -> str | None:
    if isinstance(item_type, OptionsType):
        return None if item in item_type.values else "not one of the options"
    if isinstance(item_type, BoolType):
        return None if isinstance(item, bool) else "not a boolean"
    if isinstance(item_type, IntType):
        ok = isinstance(item, int) and not isinstance(item, bool)
        ok = ok and re.fullmatch(item_type.spec().source[1:], str(item)) is not None
        return None if ok else "not an integer of the type's range"
    if isinstance(item_type, FloatType):
        ok = isinstance(item, (int, float)) and not isinstance(item, bool)
        ok = ok and re.fullmatch(item_type.spec().source[1:], json.dumps(item)) is not None
        return None if ok else "not a number of the type's range"
    return None if isinstance(item, str) and item else "not a non-empty string"


_JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def schema_violation(schema: dict, value, where: str) -> str | None:
    """The first way ``value`` breaks ``schema`` (the JSON Schema subset that SemQL
    users write for LM outputs: type, enum, properties, required, items, lengths and
    numeric bounds), or None."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} not in enum"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_json_type(value, k) for k in kinds):
            return f"{where}: {value!r} is not {'/'.join(kinds)}"
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            return f"{where}: string longer than maxLength"
        if len(value) < schema.get("minLength", 0):
            return f"{where}: string shorter than minLength"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where}: below minimum"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where}: above maximum"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"{where}: missing {key!r}"
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False and set(value) - set(props):
            return f"{where}: unexpected keys {sorted(set(value) - set(props))}"
        for key, sub in props.items():
            if key in value:
                reason = schema_violation(sub, value[key], f"{where}.{key}")
                if reason:
                    return reason
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            return f"{where}: {len(value)} items outside the bounds"
        for i, item in enumerate(value):
            reason = schema_violation(schema.get("items", {}), item, f"{where}[{i}]")
            if reason:
                return reason
    return None


def _is_json_type(value, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    expected = _JSON_TYPES.get(kind)
    return expected is not None and isinstance(value, expected)
