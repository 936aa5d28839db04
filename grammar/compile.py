"""GrammarSpec -> xgrammar Grammar. Compilation against a tokenizer happens in the runtime.

JSON schemas are compiled compact (no free whitespace, separators ',' and ':'): with
xgrammar's default any_whitespace=True small models pad JSON with spaces until they run
out of tokens (measured on Gemma 270M).
"""

from __future__ import annotations

import json
import re

import xgrammar as xgr

from .types import MAX_LIST_ITEMS, GrammarSpec

_UNBOUNDED = [
    (re.compile(r"\[0-9\]\*"), "[0-9]{0,15}"),
    (re.compile(r"\{1, -1\}"), "{1,8}"),
    (re.compile(r"\{0, -1\}"), f"{{0,{MAX_LIST_ITEMS - 1}}}"),
]


# xgrammar writes the characters of a string with maxLength as [^"\\\r\n], which admits
# tabs and other control characters that JSON forbids unescaped (json.loads and DuckDB
# reject them); found by the random-logits stress test. Its unbounded strings already
# exclude them.
_BOUNDED_STRING_CHAR = r"[^\"\\\r\n]"
_JSON_STRING_CHAR = r"[^\0-\x1f\"\\]"


def _bound_repetitions(ebnf: str) -> str:
    """Cap the open repetitions of xgrammar's JSON grammar (digits, array items).

    Small models repeat a digit or an item until they run out of tokens; with a cap the
    grammar forces the value to close, so every generation ends in valid JSON. Schema
    bounds (minimum/maximum) would do the same but compiled 10x slower here.
    """
    for pattern, repl in _UNBOUNDED:
        ebnf = pattern.sub(repl, ebnf)
    return ebnf.replace(_BOUNDED_STRING_CHAR, _JSON_STRING_CHAR)


# xgrammar's C++ log prefix on its errors: "[22:41:16] /project/cpp/regex_converter.cc:94: "
_LOG_PREFIX = re.compile(r"^\[[0-9:]+\] \S+:[0-9]+: ")


def _reason(err: Exception, spec: GrammarSpec) -> str:
    """xgrammar's reason without its log prefix; for a regex without the position, which
    counts in the pattern as wrapped here (types.RegexType.spec), not as the user wrote it."""
    reason = _LOG_PREFIX.sub("", str(err).strip())
    if spec.kind == "regex":
        reason = re.sub(r" at position [0-9]+", "", reason)
    return reason


def to_xgrammar(spec: GrammarSpec) -> xgr.Grammar:
    """Build the xgrammar Grammar of a spec; raises ValueError on a malformed grammar."""
    try:
        if spec.kind == "ebnf":
            return xgr.Grammar.from_ebnf(spec.source)
        if spec.kind == "regex":
            return xgr.Grammar.from_regex(spec.source)
        if spec.kind == "json_schema":
            body = xgr.Grammar.from_json_schema(
                json.loads(spec.source), any_whitespace=False, separators=(",", ":")
            )
            bounded = xgr.Grammar.from_ebnf(_bound_repetitions(str(body)))
            return xgr.Grammar.concat(xgr.Grammar.from_ebnf('root ::= " "'), bounded)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"invalid {spec.kind} grammar: {_reason(err, spec)}") from None
    raise ValueError(f"unknown grammar kind {spec.kind!r}")
