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


def compare(value, prev, not_recorded: bool = False, prev_not_recorded: bool = False) -> dict:
    """A figure against the previous period's. `not_recorded`: the value is None because
    the city does not record the figure's inputs (shown as "not recorded", docs/kpis.md),
    not because there was nothing to count; the flags appear only when set."""
    out = {"value": value, "prev": prev, "delta": delta(value, prev)}
    if not_recorded:
        out["not_recorded"] = True
    if prev_not_recorded:
        out["prev_not_recorded"] = True
    return out


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


class Overlap:
    """The rows a poll has read within the overlap it re-reads for late commits, so that
    the next poll can ask the store for one aggregate per write stamp (updated_at,
    received_at) instead of every row again.

    A row written since (a new row, a late commit, a row written again) adds to its new
    stamp's row count and id sum in the store, and takes from its old stamp's. Once the
    rows past the watermark are read (and the rows they moved have left their old stamps
    here too), the oldest stamp whose (count, sum) still differs is where a late commit
    landed, and reading resumes there. `ident` maps a row's key to the integer summed.
    """

    def __init__(self, ident=lambda key: key):
        self.ident = ident
        self.stamps: dict = {}    # key -> stamp of the row as read
        self.by_stamp: dict = {}  # stamp -> [rows, sum of ids], for stamps in the overlap

    def seen(self, key, stamp) -> bool:
        return self.stamps.get(key) == stamp

    def add(self, key, stamp) -> None:
        old = self.stamps.get(key)
        if old == stamp:
            return
        if old in self.by_stamp:
            self.by_stamp[old][0] -= 1
            self.by_stamp[old][1] -= self.ident(key)
        self.stamps[key] = stamp
        agg = self.by_stamp.setdefault(stamp, [0, 0])
        agg[0] += 1
        agg[1] += self.ident(key)

    def forget_until(self, since) -> None:
        """Stamps at or before `since` have left the overlap."""
        for stamp in [s for s in self.by_stamp if s <= since]:
            del self.by_stamp[stamp]
        if len(self.stamps) > 2 * sum(n for n, _ in self.by_stamp.values()) + 1024:  # now and then
            self.stamps = {k: v for k, v in self.stamps.items() if v > since}

    def first_unseen(self, stamps: Iterable[tuple], until) -> dt.datetime | None:
        """The oldest stamp up to `until` (the watermark: later rows have just been read)
        whose rows in the store differ from the rows read, given the store's (stamp, row
        count, sum of ids) per stamp in the overlap; None when all agree."""
        theirs = {stamp: [n, total] for stamp, n, total in stamps if stamp <= until}
        mine = {s: agg for s, agg in self.by_stamp.items() if agg[0] and s <= until}
        differ = [s for s in set(mine) | set(theirs) if mine.get(s, [0, 0]) != theirs.get(s, [0, 0])]
        return min(differ) if differ else None
