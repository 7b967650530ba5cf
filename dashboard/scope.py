"""What the person (or display) behind a request may see: every district, or some.

Every query, callback and export asks `current_scope()` and narrows what it reads to
`scope.districts`; a request for a district outside the scope gets nothing (the
caller shows "not allowed" or falls back to the scope's own district), never data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Scope:
    districts: frozenset[str] | None = None  # None: every district (city-wide roles)
    role: str = "admin"
    name: str = ""

    @property
    def city_wide(self) -> bool:
        return self.districts is None

    def allows(self, district: str | None) -> bool:
        """May this scope see `district` (None: the whole city)?"""
        if self.districts is None:
            return True
        return district is not None and district in self.districts

    def filter(self, codes: Iterable[str]) -> list[str]:
        """The codes this scope may see, in the given order."""
        return [c for c in codes if self.allows(c)]

    def default_district(self) -> str | None:
        """Where a restricted scope lands when it asks for the city: its own district
        (None for the city-wide, and for an empty scope, which may see nothing)."""
        return sorted(self.districts)[0] if self.districts else None

    def key(self) -> str:
        """For cache keys: two requests share a cached answer only with the same scope."""
        return "all" if self.districts is None else ",".join(sorted(self.districts))


EVERYTHING = Scope()


def current_scope() -> Scope:
    """The scope of the current request's user; see dashboard/auth.py."""
    from flask import current_app

    resolver = current_app.extensions.get("command_center_scope")
    return resolver() if resolver is not None else EVERYTHING


# --- a snapshot narrowed to a scope ------------------------------------------------------
def restrict_sections(sections: dict, districts: frozenset[str], known: Iterable[str] = ()) -> dict:
    """Snapshot sections (dicts as in Section.to_dict) with every other district's
    figures removed, for a district-scoped wall: `by_district` maps, any map keyed by a
    `known` district code, district lists, rows that name a district, and exclusive
    grids of other districts. City-level blocks stay; the wall shows them only as
    labelled city references (docs/deployment.md).
    """
    hidden = frozenset(known) - districts
    return {name: _narrow(section, districts, hidden, frozenset()) for name, section in sections.items()}


def _grids_of(value: dict, districts: frozenset[str]) -> frozenset[str]:
    return frozenset(str(g.get("grid_id")) for g in value.get("exclusive_grids") or []
                     if isinstance(g, dict) and g.get("district") in districts)


def _row_district(row) -> str | None:
    """The district a row belongs to: its `district`, or the `code` of a district row."""
    if not isinstance(row, dict):
        return None
    if "district" in row:
        return row["district"] or ""
    return row["code"] if "code" in row and "short_zh" in row else None


def _narrow(value, districts: frozenset[str], hidden: frozenset[str], grids: frozenset[str]):
    if isinstance(value, list):
        return [_narrow(v, districts, hidden, grids) for v in value
                if _row_district(v) in (None, *districts)]
    if not isinstance(value, dict):
        return value
    if "exclusive_grids" in value:
        grids = _grids_of(value, districts)
    out = {}
    for key, v in value.items():
        if key in hidden:
            continue
        if key == "by_district" and isinstance(v, dict):
            out[key] = {c: _narrow(x, districts, hidden, grids) for c, x in v.items() if c in districts}
        elif key == "districts" and isinstance(v, list):
            out[key] = [c for c in v if c in districts]
        elif key == "by_district_category_stage" and isinstance(v, list):
            out[key] = [row for row in v if row and row[0] in districts]
        elif key == "by_exclusive_grid" and isinstance(v, dict):
            out[key] = {g: x for g, x in v.items() if g in grids}
        else:
            out[key] = _narrow(v, districts, hidden, grids)
    return out
