"""The KPI snapshot: what every screen shows, computed once per poll.

A snapshot is plain JSON. Its `version` is a hash of the sections' content (status,
since, error, data) and nothing else, so it changes exactly when a screen would draw
something different; `computed_at` and `data_as_of` move on every poll without
changing it (screens read those from the cache's small head, see `Head`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

FORMAT = 1  # bump when the JSON layout changes incompatibly
STATUSES = ("fresh", "stale", "error", "empty")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("snapshot timestamps must be timezone-aware")
    return value.isoformat()


def _parse(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def canonical_bytes(value: Any) -> bytes:
    """One spelling per value (sorted keys, no spaces, UTF-8): the basis of the version.
    orjson: a snapshot is about 200 KB, and the stdlib encoder took ~10 ms of each poll."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def canonical_json(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")


def is_empty(payload: Any) -> bool:
    """Only "nothing" is empty: None, {} or []. A zero is a real value."""
    return payload is None or (isinstance(payload, (list, dict)) and len(payload) == 0)


@dataclass(frozen=True)
class Section:
    status: str  # one of STATUSES
    data: Any = None
    since: dt.datetime | None = None  # first failure of the current stale/error spell
    error: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown section status {self.status!r}")

    def to_dict(self) -> dict:
        return {"status": self.status, "since": _iso(self.since), "error": self.error,
                "data": self.data}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Section":
        return cls(status=d["status"], data=d.get("data"), since=_parse(d.get("since")),
                   error=d.get("error"))


def content_version(sections: Mapping[str, Section]) -> str:
    body = canonical_bytes({name: s.to_dict() for name, s in sections.items()})
    return hashlib.sha256(body).hexdigest()[:20]


@dataclass(frozen=True)
class Snapshot:
    computed_at: dt.datetime
    data_as_of: dt.datetime | None
    sections: dict[str, Section] = field(default_factory=dict)
    version: str = ""

    def __post_init__(self):
        if not self.version:  # derived, never chosen by the caller
            object.__setattr__(self, "version", content_version(self.sections))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": self.version,
                "computed_at": _iso(self.computed_at), "data_as_of": _iso(self.data_as_of),
                "sections": {name: s.to_dict() for name, s in self.sections.items()}}

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Snapshot":
        if d.get("format") != FORMAT:
            raise ValueError(f"snapshot format {d.get('format')!r}, expected {FORMAT}")
        sections = {name: Section.from_dict(s) for name, s in d["sections"].items()}
        snap = cls(computed_at=dt.datetime.fromisoformat(d["computed_at"]), data_as_of=_parse(d["data_as_of"]),
                   sections=sections)
        if snap.version != d["version"]:
            raise ValueError("snapshot version does not match its content")
        return snap

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Snapshot":
        return cls.from_dict(orjson.loads(raw))

    def head(self) -> "Head":
        return Head(self.version, self.computed_at, self.data_as_of,
                    {name: s.status for name, s in self.sections.items()})


@dataclass(frozen=True)
class Head:
    """The small part of a snapshot: read on every refresh instead of the whole thing."""

    version: str
    computed_at: dt.datetime
    data_as_of: dt.datetime | None
    statuses: dict[str, str] = field(default_factory=dict)

    def age(self, now: dt.datetime) -> float:
        return (now - self.computed_at).total_seconds()

    def to_json(self) -> str:
        return canonical_json({"version": self.version, "computed_at": _iso(self.computed_at),
                               "data_as_of": _iso(self.data_as_of), "statuses": self.statuses})

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Head":
        d = orjson.loads(raw)
        return cls(d["version"], dt.datetime.fromisoformat(d["computed_at"]), _parse(d["data_as_of"]),
                   d.get("statuses", {}))
