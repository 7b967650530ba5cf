"""Reference data the importer resolves names against: districts (with polygons),
case categories, case sources, departments, streets and grids. Loaded once per import;
all small tables.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, select

from datasource.geo import contains
from datasource.importer import errors as E
from datasource.importer.errors import RowReject
from datasource.importer.vocab import SYNONYMS
from datasource.schema import CaseCategory, CaseSource, Department, District, Grid, Street


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _index(pairs) -> dict[str, str | None]:
    """name -> target; a name that points at two targets maps to None (ambiguous)."""
    out: dict[str, str | None] = {}
    for name, target in pairs:
        if not name:
            continue
        k = _key(str(name))
        out[k] = target if out.get(k, target) == target else None
    return out


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    time_limit_hours: float | None
    department: str | None


class Reference:
    def __init__(self, conn: Connection):
        districts = conn.execute(select(District.code, District.name_zh, District.short_zh,
                                        District.name_en, District.geometry)).all()
        self.district_codes = {d.code for d in districts}
        self._districts = _index(
            [(d.code, d.code) for d in districts] + [(d.name_zh, d.code) for d in districts]
            + [(d.short_zh, d.code) for d in districts] + [(d.name_en, d.code) for d in districts]
            + [(f"{d.name_en} district", d.code) for d in districts])
        self._polygons = [(d.code, json.loads(d.geometry)) for d in districts if d.geometry]

        cats = conn.execute(select(CaseCategory.code, CaseCategory.name_zh, CaseCategory.name_en,
                                   CaseCategory.time_limit_hours, CaseCategory.department)).all()
        self.categories = {c.code: CategoryInfo(c.code, c.time_limit_hours, c.department) for c in cats}
        # codes win over names: a code is looked up on its own first
        self._category_codes = {_key(c.code): c.code for c in cats}
        self._category_names = _index([(c.name_zh, c.code) for c in cats]
                                      + [(c.name_en, c.code) for c in cats])

        streets = conn.execute(select(Street.id, Street.code, Street.district_code, Street.name_zh,
                                      Street.name_en)).all()
        self._streets: dict[tuple[str, str], int | None] = {}
        for s in streets:
            names = [s.code, s.name_zh, s.name_en, s.name_zh.removesuffix("街道")]
            for name in filter(None, names):
                k = (s.district_code, _key(name))
                self._streets[k] = s.id if self._streets.get(k, s.id) == s.id else None
        self._grids = {_key(g.code): (g.id, g.district_code) for g in
                       conn.execute(select(Grid.id, Grid.code, Grid.district_code))}

        sources = conn.execute(select(CaseSource.code, CaseSource.name_zh, CaseSource.name_en)).all()
        self.source_codes = {s.code for s in sources}
        self._source_codes = {_key(s.code): s.code for s in sources}
        # the store's names, then the built-in words of the demo's channels (12345 -> hotline)
        # for the codes the store has
        self._source_names = _index([(s.name_zh, s.code) for s in sources] + [(s.name_en, s.code) for s in sources]
                                    + [(w, c) for w, c in SYNONYMS.get("source", {}).items()
                                       if c in self.source_codes])
        departments = conn.execute(select(Department.code, Department.name_zh, Department.name_en)).all()
        self._departments = _index([(d.code, d.name_zh) for d in departments]
                                   + [(d.name_zh, d.name_zh) for d in departments]
                                   + [(d.name_en, d.name_zh) for d in departments])

    # -- districts ----------------------------------------------------------------
    def district(self, value: str, field: str = "district_code") -> str:
        code = self._districts.get(_key(value))
        if code is None:
            why = "ambiguous" if _key(value) in self._districts else "not a known district code or name"
            raise RowReject(field, E.UNKNOWN_DISTRICT, f"{value!r}: {why}")
        return code

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
        """District of each point by point-in-polygon; None outside every polygon."""
        found = np.full(len(lon), None, dtype=object)
        for code, geometry in self._polygons:
            open_ = np.equal(found, None)
            if not open_.any():
                break
            hit = np.zeros(len(lon), dtype=bool)
            hit[open_] = contains(geometry, lon[open_], lat[open_])
            found[hit] = code
        return list(found)

    # -- categories ---------------------------------------------------------------
    def category(self, value: str, field: str = "category_code") -> CategoryInfo:
        k = _key(value)
        code = self._category_codes.get(k) or self._category_names.get(k)
        if code is None:
            if k in self._category_names:
                why = "ambiguous name, give the code"
            elif set(self.categories) <= {"other"}:  # none, or only the default
                why = ("the store has no case categories: load them with `python -m dashboard import "
                       "FILE --kind categories` (the cases export itself can be that file)")
            else:
                why = "not a known category code or name"
            raise RowReject(field, E.UNKNOWN_CATEGORY, f"{value!r}: {why}")
        return self.categories[code]

    # -- streets and grids --------------------------------------------------------
    def street(self, district_code: str, value: str) -> int:
        sid = self._streets.get((district_code, _key(value)))
        if sid is None:
            raise RowReject("street", E.UNKNOWN_STREET,
                            f"{value!r} is not a street of district {district_code}")
        return sid

    def grid(self, value: str, field: str = "grid") -> tuple[int, str]:
        found = self._grids.get(_key(value))
        if found is None:
            raise RowReject(field, E.UNKNOWN_GRID, f"{value!r} is not a known grid code")
        return found

    # -- sources and departments ---------------------------------------------------
    def source(self, value: str, field: str = "source") -> str:
        k = _key(value)
        code = self._source_codes.get(k) or self._source_names.get(k)
        if code is None:
            if k in self._source_names:
                why = "ambiguous name, give the code"
            elif self.source_codes <= {"other"}:  # none, or only the default
                why = ("the store has no case sources: load them with `python -m dashboard import "
                       "FILE --kind sources` (the cases export itself can be that file)")
            else:
                why = "not a known source code or name (`--kind sources` adds one)"
            raise RowReject(field, E.INVALID_VALUE, f"{value!r}: {why}")
        return code

    def department(self, value: str) -> str:
        """A department's name for a code or name of the departments table; any other
        text stands as it is (departments are optional reference data)."""
        return self._departments.get(_key(value)) or value
