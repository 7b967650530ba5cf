"""What one wall shows, from its URL alone: language, district, map KPI, rotation, page.

Every parameter is checked; a bad one becomes a message on the screen and a sensible
default, never a blank page or a server error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from layouts.i18n import pick_language, t

PAGES = ("overview", "cases", "enterprise", "parking")
MAP_KPIS = ("open_cases", "overdue", "closure_rate", "on_time_closure_rate", "occupancy",
            "visits", "resolution_rate")
MIN_ROTATE_SECONDS = 10
MAX_ROTATE_SECONDS = 86400  # a day; a longer one is a typo (and past 64 bits, unencodable)
_SECONDS = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class WallView:
    lang: str
    district: str | None  # None: the city
    kpi: str
    rotate: int | None  # seconds per page, None: no rotation
    page: str  # the page shown first

    @property
    def key(self) -> str:
        """What the rendering depends on besides the data (rotation and page do not)."""
        return f"{self.lang}|{self.district or 'city'}|{self.kpi}"


def _first(query: dict, name: str) -> str | None:
    value = query.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def parse_view(query: dict, district_codes, default_lang: str,
               default_kpi: str = "open_cases") -> tuple[WallView, list[str]]:
    """(view, warnings in the chosen language) for a page's query parameters."""
    lang, lang_warning = pick_language(_first(query, "lang"), default_lang)
    warnings = [lang_warning] if lang_warning else []

    district = _first(query, "district")
    if district is not None and district not in set(district_codes):
        warnings.append(t("bad_district", lang, value=district[:40]))
        district = None

    kpi = _first(query, "kpi") or default_kpi
    if kpi not in MAP_KPIS:
        warnings.append(t("bad_kpi", lang, value=kpi[:40], default=t(f"kpi_{default_kpi}", lang)))
        kpi = default_kpi

    rotate = None
    raw_rotate = _first(query, "rotate")
    if raw_rotate is not None:
        rotate = int(raw_rotate) if _SECONDS.fullmatch(raw_rotate) else -1
        if not MIN_ROTATE_SECONDS <= rotate <= MAX_ROTATE_SECONDS:
            warnings.append(t("bad_rotate", lang, value=raw_rotate[:40]))
            rotate = None

    page = _first(query, "page") or PAGES[0]
    if page not in PAGES:
        warnings.append(t("bad_page", lang, value=page[:40]))
        page = PAGES[0]
    return WallView(lang, district, kpi, rotate, page), warnings
