"""Names and shapes the screens need beside the snapshot: districts, case categories and
case sources.

They come from the store (an integrator loads their own city there) and change rarely,
so each process keeps them for `REFERENCE_TTL` seconds. If the store cannot be read,
the last copy stays; if there never was one, the bundled reference files stand in, so
a wall started while the store is down still has names and a map.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from datasource import queries
from datasource.reference import read_categories, read_districts, read_sources

log = logging.getLogger(__name__)
REFERENCE_TTL = 300.0
RETRY = 30.0


@dataclass(frozen=True)
class District:
    code: str
    name_zh: str
    short_zh: str
    name_en: str
    kind: str
    lon: float | None
    lat: float | None
    geometry: dict | None

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.short_zh


@dataclass(frozen=True)
class Reference:
    districts: tuple[District, ...]
    categories: dict[str, dict] = field(default_factory=dict)  # code -> {name_zh, name_en, parent, kind}
    version: str = ""  # changes when any name or shape changes (part of render keys)
    sources: dict[str, dict] = field(default_factory=dict)  # code -> {name_zh, name_en}, in display order

    def district(self, code: str) -> District | None:
        return next((d for d in self.districts if d.code == code), None)

    def district_name(self, code: str, lang: str) -> str:
        d = self.district(code)
        return d.name(lang) if d else code

    def only(self, codes) -> "Reference":
        """The reference as a district-scoped viewer sees it: their districts only."""
        keep = frozenset(codes)
        return Reference(tuple(d for d in self.districts if d.code in keep), self.categories,
                         f"{self.version}:{','.join(sorted(keep))}", self.sources)

    def source_name(self, code: str, lang: str) -> str:
        s = self.sources.get(code)
        if s is None:
            return code
        return s["name_en"] if lang == "en" else s["name_zh"]

    def category_name(self, code: str, lang: str) -> str:
        c = self.categories.get(code)
        if c is None:
            return code
        return c["name_en"] if lang == "en" else c["name_zh"]


def _num(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if f != f else f  # NaN -> None


def build(district_rows: list[dict], category_rows: list[dict], source_rows: list[dict] = ()) -> Reference:
    districts = tuple(District(
        code=str(r["code"]), name_zh=r["name_zh"], short_zh=r.get("short_zh") or r["name_zh"],
        name_en=r.get("name_en") or r["name_zh"], kind=r.get("kind") or "district",
        lon=_num(r.get("center_lon")), lat=_num(r.get("center_lat")),
        geometry=json.loads(r["geometry"]) if isinstance(r.get("geometry"), str) and r["geometry"]
        else r.get("geometry") or None)
        for r in district_rows)
    categories = {str(c["code"]): {"name_zh": c["name_zh"], "name_en": c.get("name_en") or c["name_zh"],
                                   "parent": c.get("parent_code") or None, "kind": c.get("kind") or None}
                  for c in category_rows}
    sources = {str(s["code"]): {"name_zh": s["name_zh"], "name_en": s.get("name_en") or s["name_zh"]}
               for s in source_rows}
    digest = hashlib.sha256(json.dumps([[d.__dict__ for d in districts], categories, list(sources.items())],
                                       sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return Reference(districts, categories, digest[:12], sources)


def bundled() -> Reference:
    """The reference files shipped in datasource/data/."""
    rows = [{"code": d.code, "name_zh": d.name_zh, "short_zh": d.short_zh, "name_en": d.name_en,
             "kind": d.kind, "center_lon": d.center_lon, "center_lat": d.center_lat,
             "geometry": d.geometry} for d in read_districts()]
    return build(rows, read_categories(), read_sources())


class ReferenceSource:
    """The process's copy of the reference, re-read from the store every `ttl` seconds."""

    def __init__(self, engine: Engine, ttl: float = REFERENCE_TTL):
        self.engine = engine
        self.ttl = ttl
        self._value: Reference | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Reference:
        if self._value is not None and time.monotonic() - self._read_at < self.ttl:
            return self._value
        with self._lock:
            if self._value is not None and time.monotonic() - self._read_at < self.ttl:
                return self._value
            try:
                rows = queries.districts(self.engine)
                value = build(rows, queries.categories(self.engine), queries.sources(self.engine)) if rows else None
            except SQLAlchemyError as exc:
                log.warning("reference data unreadable (%s); keeping the last copy", exc.__class__.__name__)
                value = None
            read_at = time.monotonic()
            if value is None:  # try the store again in RETRY seconds, not a whole ttl
                value = self._value or bundled()
                read_at -= max(0.0, self.ttl - RETRY)
            self._value, self._read_at = value, read_at
            return value
