"""The browsing pages' state: parsed from the URL's query string, checked, and written back.

Everything a view shows follows from its URL (see docs/browsing.md for the parameters),
so a link reproduces the view. `parse` never raises on what a browser sends: a
malformed date, an unknown code, a district outside the request's scope or a parameter
it does not know becomes a notice (an i18n key and its values, shown in the page) and
the state falls back to a valid one. Pure: the scope, the clock and a `Lookup` of codes
are passed in.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import Mapping, Protocol
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from dashboard.guard import BadInput, as_int, as_list
from dashboard.periods import UTC, period
from dashboard.scope import Scope

PRESETS = ("today", "week", "last_week", "month", "year", "custom")
COMPARES = ("prev", "custom")
LISTS = ("reported", "filed", "closed", "open", "overdue")
PROBLEM_TYPES = ("hiring", "licence", "tax", "financing", "infrastructure", "safety", "other")
# the KPI table's columns a URL may sort by ("-" in front: descending)
TABLE_SORTS = ("name", "reported", "filed", "closed", "closure_rate", "on_time_closure_rate",
               "handling_rate", "on_time_handling_rate", "rework_rate", "extension_rate",
               "avg_handle_hours", "avg_close_hours", "open", "overdue")
CASE_SORTS = ("reported_at", "filed_at", "closed_at", "deadline_at", "external_id", "status",
              "category", "district", "source", "rework_count")
DEFAULT_PERIOD = "week"
MAX_DAYS = 1830  # a custom period or comparison of at most five years
EARLIEST = dt.date(2000, 1, 1)
PARAMS = ("lang", "period", "from", "to", "compare", "cfrom", "cto", "district", "street", "grid",
          "category", "source", "list", "sort", "csort", "egrid", "ptype", "facility")
MAX_ROW_OFFSET = 2 ** 31 - 1  # where a block of the case list may start
GRID_BLOCK = 100  # rows a block asks for when its request does not say
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^\d{1,12}$")


class Lookup(Protocol):
    """The codes a URL may name, read from the store (dashboard/browse.py)."""

    def district_codes(self) -> list[str]: ...
    def street(self, street_id: int) -> dict | None: ...          # {"district": ...}
    def grid(self, grid_id: int) -> dict | None: ...              # {"district", "street_id", "kind"}
    def categories(self) -> Mapping[str, str | None]: ...         # code -> parent code
    def sources(self) -> Mapping[str, dict]: ...                  # code -> names (reference data)
    def facility(self, facility_id: int) -> dict | None: ...      # {"district": ...}


@dataclass(frozen=True)
class ViewState:
    period: str = DEFAULT_PERIOD
    date_from: dt.date | None = None  # custom period, local dates, both inclusive
    date_to: dt.date | None = None
    compare: str = "prev"
    cmp_from: dt.date | None = None   # custom comparison
    cmp_to: dt.date | None = None
    district: str | None = None
    street: int | None = None
    grid: int | None = None
    category: str | None = None
    source: str | None = None
    list: str = "reported"
    sort: str | None = None           # KPI table sort, e.g. "-closure_rate"
    csort: str | None = None          # case list sort, e.g. "-reported_at"
    egrid: int | None = None          # enterprise drill: an exclusive grid
    ptype: str | None = None          # enterprise drill: a problem type
    facility: int | None = None       # parking drill: a facility

    def replace(self, **changes) -> "ViewState":
        return dataclasses.replace(self, **changes)

    def params(self) -> dict[str, str]:
        """The non-default parameters, in a fixed order (the canonical URL)."""
        out: dict[str, str] = {}
        if self.period != DEFAULT_PERIOD:
            out["period"] = self.period
        if self.period == "custom":
            out["from"], out["to"] = self.date_from.isoformat(), self.date_to.isoformat()
        if self.compare == "custom":
            out["compare"] = "custom"
            out["cfrom"], out["cto"] = self.cmp_from.isoformat(), self.cmp_to.isoformat()
        for name in ("district", "street", "grid", "category", "source"):
            if getattr(self, name) is not None:
                out[name] = str(getattr(self, name))
        if self.list != "reported":
            out["list"] = self.list
        for name in ("sort", "csort", "egrid", "ptype", "facility"):
            if getattr(self, name) is not None:
                out[name] = str(getattr(self, name))
        return out

    def search(self, lang: str | None = None) -> str:
        params = self.params()
        if lang:
            params["lang"] = lang
        return "?" + urlencode(params) if params else ""


@dataclass(frozen=True)
class Window:
    start: dt.datetime       # aware UTC, inclusive
    end: dt.datetime         # exclusive; never after now
    prev_start: dt.datetime
    prev_end: dt.datetime

    @property
    def cur(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start, self.end

    @property
    def prev(self) -> tuple[dt.datetime, dt.datetime]:
        return self.prev_start, self.prev_end


Notice = tuple  # (i18n key, {values}): translated by the page


def query_dict(search: str | None) -> dict[str, str]:
    """?a=1&b=2 -> {"a": "1", "b": "2"} (the first value of a repeated parameter)."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?"), keep_blank_values=True).items()}


def _date(raw: str | None) -> dt.date | None:
    if raw is None or not _DATE.match(raw.strip()):
        raise ValueError
    return dt.date.fromisoformat(raw.strip())


def _id(raw: str) -> int:
    if not _ID.match(raw.strip()):
        raise ValueError
    return int(raw.strip())


def _span(name: str, raw_from, raw_to, today: dt.date, notices: list) -> tuple[dt.date, dt.date] | None:
    """A checked (from, to) pair of local dates, or None with a notice saying why."""
    try:
        start = _date(raw_from)
        end = _date(raw_to) if raw_to not in (None, "") else today
    except ValueError:
        notices.append(("bad_dates", {"which": name, "value": f"{raw_from or ''} ~ {raw_to or ''}"}))
        return None
    if start > end:
        notices.append(("dates_reversed", {"which": name, "value": f"{raw_from} ~ {raw_to}"}))
        return None
    if start < EARLIEST or start > today:
        notices.append(("dates_out_of_range", {"which": name, "value": f"{raw_from} ~ {raw_to}"}))
        return None
    if (end - start).days >= MAX_DAYS:
        notices.append(("dates_too_long", {"which": name, "value": f"{raw_from} ~ {raw_to}",
                                           "days": MAX_DAYS}))
        return None
    return start, min(end, today)


def parse(query: Mapping[str, str], *, scope: Scope, lookup: Lookup, now: dt.datetime,
          tz: ZoneInfo) -> tuple[ViewState, list[Notice]]:
    """The valid state a URL asks for, and what was wrong with it (never raises)."""
    notices: list[Notice] = []
    today = now.astimezone(tz).date()
    q = {k: (v if isinstance(v, str) else str(v)) for k, v in query.items()}
    for name in q:
        if name not in PARAMS:
            notices.append(("unknown_param", {"value": name}))
    s = ViewState()

    preset = q.get("period") or DEFAULT_PERIOD
    if preset not in PRESETS:
        notices.append(("bad_period", {"value": preset}))
    elif preset == "custom":
        span = _span("period", q.get("from"), q.get("to"), today, notices)
        if span:
            s = s.replace(period="custom", date_from=span[0], date_to=span[1])
    else:
        s = s.replace(period=preset)

    compare = q.get("compare") or "prev"
    if compare not in COMPARES:
        notices.append(("bad_compare", {"value": compare}))
    elif compare == "custom":
        span = _span("compare", q.get("cfrom"), q.get("cto"), today, notices)
        if span:
            s = s.replace(compare="custom", cmp_from=span[0], cmp_to=span[1])

    # places: district > street > grid, each checked against the store and the scope;
    # something outside the scope reads exactly like something that does not exist
    district = q.get("district") or None
    if district is not None:
        if district in lookup.district_codes() and scope.allows(district):
            s = s.replace(district=district)
        else:
            notices.append(("unknown_district_browse", {"value": district}))
    if s.district is None and scope.districts is not None and len(scope.districts) == 1:
        s = s.replace(district=scope.default_district())  # a one-district scope starts at home
    if q.get("street"):
        street = None
        try:
            street = lookup.street(_id(q["street"]))
        except ValueError:
            pass
        if street is None or not scope.allows(street["district"]) or \
                (s.district is not None and street["district"] != s.district and district is not None):
            notices.append(("unknown_street", {"value": q["street"]}))
        else:
            s = s.replace(district=street["district"], street=int(q["street"]))
    if q.get("grid"):
        grid = None
        try:
            grid = lookup.grid(_id(q["grid"]))
        except ValueError:
            pass
        if grid is None or not scope.allows(grid["district"]) or \
                (s.street is not None and grid["street_id"] != s.street) or \
                (district is not None and s.district is not None and grid["district"] != s.district):
            notices.append(("unknown_grid", {"value": q["grid"]}))
        else:
            s = s.replace(district=grid["district"], street=grid["street_id"], grid=int(q["grid"]))

    category = q.get("category") or None
    if category is not None:
        if category in lookup.categories():
            s = s.replace(category=category)
        else:
            notices.append(("unknown_category", {"value": category}))
    source = q.get("source") or None
    if source is not None:
        if source in lookup.sources():
            s = s.replace(source=source)
        else:
            notices.append(("unknown_source", {"value": source}))
    kind = q.get("list") or "reported"
    if kind in LISTS:
        s = s.replace(list=kind)
    else:
        notices.append(("unknown_list", {"value": kind}))
    for name, allowed in (("sort", TABLE_SORTS), ("csort", CASE_SORTS)):
        raw = q.get(name) or None
        if raw is not None:
            if raw.lstrip("-") in allowed:
                s = s.replace(**{name: raw})
            else:
                notices.append(("unknown_sort", {"value": raw}))

    if q.get("egrid"):
        grid = None
        try:
            grid = lookup.grid(_id(q["egrid"]))
        except ValueError:
            pass
        if grid is None or grid.get("kind") != "exclusive" or not scope.allows(grid["district"]) or \
                (s.district is not None and grid["district"] != s.district):
            notices.append(("unknown_egrid", {"value": q["egrid"]}))
        else:
            s = s.replace(egrid=int(q["egrid"]), district=grid["district"])
    ptype = q.get("ptype") or None
    if ptype is not None:
        if ptype in PROBLEM_TYPES:
            s = s.replace(ptype=ptype)
        else:
            notices.append(("unknown_ptype", {"value": ptype}))
    if q.get("facility"):
        fac = None
        try:
            fac = lookup.facility(_id(q["facility"]))
        except ValueError:
            pass
        if fac is None or not scope.allows(fac["district"]) or \
                (s.district is not None and fac["district"] != s.district):
            notices.append(("unknown_facility", {"value": q["facility"]}))
        else:
            s = s.replace(facility=int(q["facility"]), district=fac["district"])
    return s, notices


def grid_block(req, max_rows: int) -> tuple[int, int, str | None]:
    """(start, count, sort) of one block of the case list the grid asks for (an AG Grid
    getRowsRequest), checked: whole row numbers, at most `max_rows` rows, a sort model of
    known shape (a column the list cannot sort by: None, the default). Raises BadInput."""
    if not isinstance(req, dict):
        raise BadInput("getRowsRequest: expected an object")
    raw_start = req.get("startRow")
    start = 0 if raw_start is None else as_int(raw_start, "startRow", 0, MAX_ROW_OFFSET)
    raw_end = req.get("endRow")
    end = start + GRID_BLOCK if raw_end is None else as_int(raw_end, "endRow", start + 1, MAX_ROW_OFFSET + max_rows)
    if end - start > max_rows:
        raise BadInput(f"getRowsRequest: more than {max_rows} rows")
    model = as_list(req.get("sortModel"), "sortModel", 8)
    sort = None
    if model:
        first = model[0]
        if not isinstance(first, dict) or not isinstance(first.get("colId"), str) \
                or first.get("sort") not in ("asc", "desc", None):
            raise BadInput("sortModel: expected [{colId, sort}]")
        if first["colId"] in CASE_SORTS:
            sort = ("-" if first.get("sort") == "desc" else "") + first["colId"]
    return start, end - start, sort


def _midnight(d: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def window(s: ViewState, now: dt.datetime, tz: ZoneInfo) -> Window:
    """The period [start, end) of a state and its comparison period, in UTC; `end` is at
    most `now`. The default comparison is the previous equal period (dashboard/periods.py
    for the calendar presets; the span just before for last week and custom periods)."""
    now = now.astimezone(UTC)
    if s.period in ("today", "week", "month", "year"):
        p = period(s.period, now, tz)
        start, end, prev = p.start, p.end, (p.prev_start, p.prev_end)
    elif s.period == "last_week":
        monday = period("week", now, tz).start
        start = _midnight((monday.astimezone(tz) - dt.timedelta(days=7)).date(), tz)
        end = monday
        prev = (_midnight((monday.astimezone(tz) - dt.timedelta(days=14)).date(), tz), start)
    else:
        start = _midnight(s.date_from, tz)
        end = min(_midnight(s.date_to + dt.timedelta(days=1), tz), now)
        prev = (start - (end - start), start)
    if s.compare == "custom":
        prev = (_midnight(s.cmp_from, tz), min(_midnight(s.cmp_to + dt.timedelta(days=1), tz), now))
    return Window(start, end, *prev)
