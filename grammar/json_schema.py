"""JSON-schema answers (``return_type='{...}'``): bounding the strings a schema leaves open.

Small models write characters until they run out of tokens; a bound in the grammar makes
every generation close, and the token budget follows the bounds.
"""

from __future__ import annotations

# The length of a JSON-schema string that sets no maxLength (EXPLAIN says so; a schema's
# own "maxLength" raises or lowers it).
DEFAULT_MAX_STRING = 64


def open_strings(schema) -> bool:
    """Whether the schema has a free string that :func:`bounded_schema` will bound."""
    if isinstance(schema, list):
        return any(open_strings(s) for s in schema)
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    free = "string" in kinds and not {"enum", "pattern", "maxLength"} & set(schema)
    return free or any(open_strings(v) for v in schema.values())


def string_chars(schema) -> int:
    """Characters of all bounded strings (array items counted maxItems times, else 8)."""
    if isinstance(schema, list):
        return sum(string_chars(s) for s in schema)
    if not isinstance(schema, dict):
        return 0
    own = int(schema.get("maxLength", 0)) if "string" in str(schema.get("type")) else 0
    inner = 0
    for key, value in schema.items():
        part = string_chars(value)
        if key in ("items", "additionalItems"):
            part *= int(schema.get("maxItems", 8))
        inner += part
    return own + inner


def bounded_schema(schema):
    """Bound the strings a schema leaves open, so that every generation terminates.

    Small models happily write digits or characters until they run out of tokens; a
    bound in the grammar forces the value to close: DEFAULT_MAX_STRING characters unless
    the schema sets maxLength (kept, and the token budget grows with it). Digits and
    array lengths are capped in the compiled grammar (grammar/compile.py).
    """
    if isinstance(schema, list):
        return [bounded_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded_schema(v) for k, v in schema.items()}
    kinds = out.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "string" in kinds and "enum" not in out and "pattern" not in out:
        out.setdefault("maxLength", DEFAULT_MAX_STRING)
    return out
