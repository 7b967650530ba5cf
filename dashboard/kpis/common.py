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


def first_unseen(stamps: Iterable[tuple], seen: dict, ident=lambda key: key) -> dt.datetime | None:
    """The oldest write stamp (updated_at, received_at) whose rows in the store differ from
    the rows already read, or None when every stamp agrees.

    `stamps` are the store's (stamp, row count, sum of row ids) per stamp since the
    overlap began; `seen` maps each row read in that window to its stamp. A row written
    since (a new row, a late commit, a row written again) adds to its new stamp's count
    or sum and takes from its old one's, so re-reading the overlap reduces to one
    aggregate per stamp instead of every row of it.
    """
    mine: dict = defaultdict(lambda: [0, 0])
    for key, stamp in seen.items():
        mine[stamp][0] += 1
        mine[stamp][1] += ident(key)
    theirs = {stamp: [n, total] for stamp, n, total in stamps}
    differ = [s for s in set(mine) | set(theirs) if mine.get(s, [0, 0]) != theirs.get(s, [0, 0])]
    return min(differ) if differ else None
