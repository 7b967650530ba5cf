"""Small pure helpers shared by the KPI modules."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable

CITY = "city"


def ratio(num: float, den: float) -> float | None:
    """num/den, or None when there is nothing to divide by (shown as "—", never as 0 %)."""
    return num / den if den else None


def delta(value: float | None, prev: float | None) -> float | None:
    return None if value is None or prev is None else value - prev


def compare(value, prev) -> dict:
    return {"value": value, "prev": prev, "delta": delta(value, prev)}


def iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t is not None else None



def totals_by(rows: Iterable[dict], key: str, fields: tuple[str, ...]) -> dict[str, dict]:
    """Sum `fields` of rows per value of `key`, plus a CITY total."""
    out: dict[str, dict] = defaultdict(lambda: {f: 0 for f in fields})
    for r in rows:
        for f in fields:
            out[r[key]][f] += r[f] or 0
            out[CITY][f] += r[f] or 0
    out.setdefault(CITY, {f: 0 for f in fields})
    return dict(out)
