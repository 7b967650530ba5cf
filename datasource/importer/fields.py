"""What a kind's target fields are, and how one cell becomes a value of a field."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field as _field
from typing import Any

from datasource.importer import errors as E
from datasource.importer.values import TimeParser, parse_bool, parse_date, parse_float, parse_int
from datasource.importer.vocab import SYNONYMS

# id: an identifier (too long is a reject); text: free text (truncated to max_len);
# ref: a code or name resolved against the store later (district, category...).
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
        """Turn a non-empty cell into the field's value; ValueError says what is wrong."""
        t = self.type
        if t == "time":
            return parse_time(text)
        if t in ("text", "ref"):
            return text[:self.max_len] if self.max_len and t == "text" else text
        if t == "id":
            if self.max_len and len(text) > self.max_len:
                raise ValueError(f"{text[:20]!r}... is longer than {self.max_len} characters")
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
                raise ValueError(f"{text!r} is not one of {', '.join(self.choices)} "
                                 "(map it under `values:`)")
            return value
        if t == "bool":
            return parse_bool(text)
        if t == "date":
            return parse_date(parse_time, text)
        number = parse_int(text) if t == "int" else parse_float(text)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            low = "" if self.low is None else f"{self.low:g}"
            high = "" if self.high is None else f"{self.high:g}"
            raise ValueError(f"{text!r} is outside {low}..{high}")
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
