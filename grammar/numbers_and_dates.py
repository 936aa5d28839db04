"""Numbers and dates: the output types a SQL cast or column can bound.

A cast to a narrower SQL type (``::INT``, ``::DECIMAL(4, 1)``, ``::TIMESTAMP``) bounds the
grammar to what the type holds, so that no answer fails the cast after the LM work.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from .output_type import GrammarSpec, OutputType, strip_space


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

    def ebnf_item(self) -> str:
        """The same number as an EBNF rule body, for a list's items (ListType)."""
        sign = '"-"? ' if self.signed else ""
        return f'{sign}("0" | [1-9] [0-9]{{0,{self.digits - 1}}})'

    def __str__(self) -> str:
        if (self.digits, self.signed) == (18, True):
            return self.name
        bound = f"at most {self.digits} digits" + ("" if self.signed else ", not negative")
        return f"{self.name} ({bound})"

    def parse(self, text: str) -> int:
        return int(strip_space(text))

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

    def ebnf_item(self) -> str:
        """The same number as an EBNF rule body, for a list's items (ListType)."""
        whole = f'("0" | [1-9] [0-9]{{0,{self.int_digits - 1}}})' if self.int_digits else '"0"'
        frac = f' ("." [0-9]{{1,{self.frac_digits}}})?' if self.frac_digits else ""
        return f'"-"? {whole}{frac}'

    def __str__(self) -> str:
        if (self.int_digits, self.frac_digits) == (15, 6):
            return self.name
        return (
            f"{self.name} (at most {self.int_digits} digits before the point, "
            f"{self.frac_digits} after)"
        )

    def parse(self, text: str) -> float:
        return float(strip_space(text))

    def hint(self) -> str:
        return "Answer with a number."

    def token_budget(self) -> int:
        return 24


_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001-9999: no year 0
_DATE_RE = (
    r" (" + _YEAR + r"-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
    r"|" + _LEAP_YEAR + r"-02-29)"
)


TIME_OF_DAY = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?"  # HH:MM(:SS)


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
        return GrammarSpec("regex", _DATE_RE + (f"( {TIME_OF_DAY})?" if self.time else ""))

    def parse(self, text: str) -> _dt.date:
        if self.time:
            return _dt.datetime.fromisoformat(strip_space(text))
        return _dt.date.fromisoformat(strip_space(text))

    def hint(self) -> str:
        if self.time:
            return "Answer with a date as YYYY-MM-DD, and a time as HH:MM if it is known."
        return "Answer with a date as YYYY-MM-DD."

    def __str__(self) -> str:
        return "timestamp (date, optional time)" if self.time else self.name
