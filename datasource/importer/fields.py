"""What a kind's target fields are, and how one cell becomes a value of a field."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field as _field
from typing import Any

from datasource.importer import errors as E
from datasource.importer.errors import CellError
from datasource.importer.hints import time_hint
from datasource.importer.values import TimeParser, parse_bool, parse_date, parse_float, parse_int
from datasource.importer.vocab import SYNONYMS

# id: an identifier; text: free text; ref: a code or name resolved against the store later
# (district, category...). An id or text longer than max_len (its column's length in
# datasource/schema.py) is rejected, never cut: PostgreSQL would refuse it and SQLite
# would store it whole, so the importer gives both stores the same honest reject.
TYPES = ("id", "text", "ref", "time", "date", "int", "float", "bool", "choice")

# Characters an id must not hold: control characters, zero-width ones (U+200B..U+200F,
# U+2060.., U+FEFF) and bidirectional controls (U+202A..U+202E, U+2066..U+2069). They are
# invisible on screen, so two ids that look the same would be two cases, and a bidi control
# reorders the text around it wherever the id is shown.
HIDDEN_IN_ID = re.compile("[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
                          "\u2060-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")

_REASON = {"time": E.UNPARSEABLE_TIME, "date": E.UNPARSEABLE_TIME,
           "int": E.INVALID_NUMBER, "float": E.INVALID_NUMBER}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    doc: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    vocab: str | None = None  # key into vocab.SYNONYMS when it differs from `name`
    max_len: int | None = None
    low: float | None = None
    high: float | None = None
    _lookup: dict = _field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        assert self.type in TYPES, self.type
        if self.type == "choice":
            table = {c.casefold(): c for c in self.choices}
            for word, target in SYNONYMS.get(self.vocab or self.name, {}).items():
                if target in self.choices:
                    table[word.casefold()] = target
            self._lookup.update(table)

    @property
    def reason(self) -> str:
        return _REASON.get(self.type, E.INVALID_VALUE)

    def convert(self, text: str, parse_time: TimeParser) -> Any:
        """Turn a non-empty cell into the field's value; ValueError (often a CellError,
        with its reason and the mapping key to fix it) says what is wrong."""
        t = self.type
        if t == "time":
            try:
                return parse_time(text)
            except ValueError as exc:
                raise CellError(str(exc), hint=time_hint(text) if "is not a time" in str(exc) else "") from None
        if t in ("text", "ref", "id") and self.max_len and len(text) > self.max_len:
            raise CellError(f"{self.name} is {len(text):,} characters long, the limit is {self.max_len} "
                            f"({text[:20]!r}...); it would be cut", E.TOO_LONG)
        if t in ("text", "ref"):
            return text
        if t == "id":
            hidden = HIDDEN_IN_ID.search(text)
            if hidden:
                ch = hidden.group()
                raise ValueError(f"{self.name} {text!r} holds U+{ord(ch):04X} "
                                 f"{unicodedata.name(ch, 'CONTROL CHARACTER')}, an invisible or "
                                 "text-direction character; an id must be plain visible text")
            return text
        if t == "choice":
            value = self._lookup.get(text.casefold())
            if value is None:
                raise CellError(f"{text!r} is not one of {', '.join(self.choices)}",
                                hint=f"map it under values.{self.name}:")
            return value
        if t == "bool":
            try:
                return parse_bool(text)
            except ValueError as exc:
                raise CellError(str(exc), hint=f"map it under values.{self.name}:") from None
        if t == "date":
            try:
                return parse_date(parse_time, text)
            except ValueError as exc:
                raise CellError(str(exc), hint=time_hint(text) if "is not a time" in str(exc) else "") from None
        number = parse_int(text) if t == "int" else parse_float(text)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            low = "" if self.low is None else f"{self.low:g}"
            high = "" if self.high is None else f"{self.high:g}"
            raise CellError(f"{text!r} is outside {low}..{high}",
                            hint=f"check that columns.{self.name}: reads the right column")
        return number


# Shared field shapes --------------------------------------------------------------
INT32 = 2 ** 31 - 1


def external_id(doc: str, *aliases: str) -> Field:
    return Field("external_id", "id", doc, required=True, aliases=("id", *aliases), max_len=64)


def coordinates() -> tuple[Field, Field]:
    return (Field("lat", "float", "latitude, WGS-84/GCJ-02 degrees", aliases=("latitude", "纬度"),
                  low=-90, high=90),
            Field("lon", "float", "longitude", aliases=("lng", "long", "longitude", "经度"),
                  low=-180, high=180))


def district(doc: str = "district: code (410105), name (金水区), short name (金水) or English "
                        "name (Jinshui); when empty, found from lat/lon") -> Field:
    return Field("district_code", "ref", doc, aliases=("district", "district_name", "所属区"))
