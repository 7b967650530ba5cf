"""Incremental maintenance of the case rollups: a poll costs what changed.

Each poll reads the cases whose `updated_at` passed the watermark (minus a small
overlap, for writers whose transactions commit late), subtracts their stored
contribution from the in-memory rollups, adds the new one, and saves both in the store.
The overlap is checked with one aggregate per `updated_at`; its rows are read again only
from the first stamp that differs from what was read before (a late commit).
The rollups themselves are kept in the store too (kpi_rollup, kpi_open: each save adds
the changes to them in the same transaction), so a new poller, a leader taking over,
reads some tens of thousands of cells instead of aggregating every case's state. Saves
happen every SAVE_EVERY seconds, not every poll: the store holds an older but whole
state in between, and a poller that loads it reads the changes since again.
A full, set-based rebuild is the fallback: at start, when the state is missing or
incomplete, and when a periodic check finds the state's row count off (deleted cases).

One owner: every write of the state carries the poll's fencing token (dashboard.owner),
and the store refuses it once another process has taken the state over. The memory is
tagged with the token it was loaded under and loaded again when the token changes (a
process that lost the leadership and won it back must not trust what it held). A
self-check compares the snapshot's totals (open cases, reported today) with counts on
the cases themselves, at load and every CHECK_EVERY seconds; a mismatch fails the
section (it turns stale on the screens) and the next poll rebuilds the state.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from zoneinfo import ZoneInfo

import numpy as np

from dashboard import owner
from dashboard.metrics import report_rows_changed
from dashboard.kpis.cases import (COHORT_FIELDS, CaseRollup, DeadlineHistogram, compute_cases, hours_of,
                                  load_reference, overdue_partial_hours, part_hours_needed, window_start)
from dashboard.kpis.common import Overlap
from dashboard.kpis.part_hours import PartHours
from dashboard.periods import all_periods, floor_hour, hour_key
from datasource import kpi_state, stages
from datasource.schema import OPEN_STATUSES

log = logging.getLogger(__name__)

OVERLAP = dt.timedelta(seconds=30)
CELLS = kpi_state.CELL_FIELDS
REPORTED, CLOSED, FILED, DUE = (CELLS.index(f) for f in ("reported", "closed", "filed", "due"))
VERIFY_EVERY = 600.0  # seconds between two checks that the state covers every case
SAVE_EVERY = 30.0  # seconds between two saves of the state and its rollups to the store
SAVE_AT_MOST = 10_000  # changed cases held in memory before a save, whatever the time
CHECK_EVERY = 60.0  # seconds between two self-checks of the snapshot's totals against the cases


class SelfCheckMismatch(RuntimeError):
    """The snapshot's totals differ from the cases': the state is rebuilt at the next poll."""


class IncrementalCases:
    """Callable section: (engine, now, tz) -> the "cases" payload, maintained incrementally."""

    def __init__(self, verify_every: float = VERIFY_EVERY, save_every: float = SAVE_EVERY,
                 check_every: float = CHECK_EVERY):
        self.roll: CaseRollup | None = None
        self.watermark: dt.datetime | None = None
        self.verify_every = verify_every
        self.save_every = save_every
        self.check_every = check_every
        self._verified_at = 0.0
        self._check_at = 0.0  # monotonic time the next self-check is due
        self._rebuild_due = False  # the last self-check failed
        self._token: int | None = None  # the fencing token the memory was loaded under
        self.last_changed = 0
        self.rebuilds = 0
        self.checks = 0  # conclusive self-checks that agreed
        self.mismatches = 0
        self._seen = Overlap()  # cases already applied in the overlap, by updated_at

    def reset(self) -> None:
        """Forget everything held in memory (this process no longer owns the state)."""
        self.roll = None
        self.watermark = None
        self._token = None
        self._rebuild_due = False
        self._pending: dict[int, dict] = {}  # case -> contribution applied in memory, not saved yet
        self.part_hours = PartHours()
        self._seen = Overlap()

    def _load(self, engine, now: dt.datetime, tz: ZoneInfo, rebuild: bool) -> None:
        """Load the rollups as the store keeps them (kpi_rollup, kpi_open), rebuilding the
        state first when it is missing or incomplete, or only the rollups when they are
        not current (a store the rollups are new to)."""
        current = kpi_state.rollups_current(engine)  # saved by a poller like this one: trusted like
        # its own state (counting every case is left to the periodic check)
        saved = kpi_state.watermark(engine)
        token = self._token = owner.current()
        if rebuild or saved is None or not kpi_state.state_current(engine) \
                or (not current and self._incomplete(engine, saved)):
            log.info("rebuilding the KPI case state")
            kpi_state.rebuild(engine, token)
            self.rebuilds += 1
        elif not current:
            log.info("rebuilding the KPI rollups from the case state")
            kpi_state.rebuild_rollups(engine, token)
        self.watermark = self._saved_watermark = kpi_state.watermark(engine)  # (after a rebuild: its own)
        self._pending = {}
        self._saved_at = time.monotonic()
        self._seen = Overlap()
        self.part_hours = PartHours()
        self._cells: defaultdict[tuple, list[int]] = defaultdict(lambda: [0] * len(CELLS))
        self._opens: defaultdict[tuple, int] = defaultdict(int)
        self.reference = load_reference(engine)  # reloaded with the state, not every poll
        self._load_stages(engine)
        districts = self.reference[0]
        self.roll = CaseRollup(window_start(now, tz), districts)
        self.deadlines = DeadlineHistogram(window_start(now, tz), districts)
        cells, opens = kpi_state.rollup_cells(engine, hour_key(self.roll.since))
        if cells:
            keys = [c[0] for c in cells], hours_of([c[1] for c in cells])
            values = np.array([c[2:] for c in cells], dtype=float)
            self.roll.load(*keys, values[:, CELLS.index("reported")], values[:, CELLS.index("closed")],
                           values[:, CELLS.index("filed"):CELLS.index("filed") + len(COHORT_FIELDS)])
            self.deadlines.load(*keys, values[:, CELLS.index("due")].astype(np.int64))
        self.open = defaultdict(int, {(d, c, s): n for d, c, s, n in opens})
        self._verified_at = time.monotonic()
        self._check_at = 0.0  # what was loaded is checked before it is trusted

    def _load_stages(self, engine) -> None:
        """Which lifecycle stages the cases have times for; kept up with each changed case
        (a stage once seen stays: it is counted again at the periodic check)."""
        has_cases, present = stages.inputs_present(engine)
        self._has_cases, self._stages = has_cases, set(present)

    def _see_stages(self, row: dict) -> None:
        self._has_cases = True
        for stage, col in stages.RECORDABLE:
            if row.get(col) is not None:
                self._stages.add(stage)

    @property
    def recorded(self) -> frozenset[str]:
        return stages.recorded(self._has_cases, self._stages)

    def _incomplete(self, engine, watermark: dt.datetime | None) -> bool:
        cases, state = kpi_state.counts(engine, watermark)
        return cases != state

    def _apply(self, row: dict, sign: int) -> None:
        """Add (or take away) one case's contribution, in memory and in the deltas the
        next save adds to the stored rollups."""
        d = row["district_code"]
        assert self.roll is not None  # loaded first
        if row["status"] in OPEN_STATUSES:
            self.open[(d, row["category_code"], row["status"])] += sign
            self._opens[(d, row["category_code"], row["status"])] += sign
        if row["deadline_hour"]:
            self.deadlines.add(d, row["deadline_hour"], sign)
            self._cells[(d, row["deadline_hour"])][DUE] += sign
        if row["reported_hour"]:
            self.roll.add("reported", d, row["reported_hour"], 1, sign)
            self._cells[(d, row["reported_hour"])][REPORTED] += sign
        if row["closed_hour"]:
            self.roll.add("closed", d, row["closed_hour"], 1, sign)
            self._cells[(d, row["closed_hour"])][CLOSED] += sign
        if row["filed_hour"]:
            cohort = {"filed": 1, **{f: row[f] for f in COHORT_FIELDS if f != "filed"}}
            self.roll.add("cohort", d, row["filed_hour"], cohort, sign)
            cell = self._cells[(d, row["filed_hour"])]
            for i, f in enumerate(COHORT_FIELDS):
                cell[FILED + i] += sign * (cohort[f] or 0)

    def _deltas(self) -> tuple[list[dict], list[dict]]:
        """The changes made to the rollups since the last save, as kpi_rollup and kpi_open rows."""
        cells = [{"district_code": d, "hour": h, **{f: (v if f.endswith("seconds") else int(round(v)))
                                                     for f, v in zip(CELLS, values)}}
                 for (d, h), values in self._cells.items() if any(values)]
        opens = [{"district_code": d, "category_code": c, "status": s, "n": n}
                 for (d, c, s), n in self._opens.items() if n]
        return cells, opens

    def refresh(self, engine, now: dt.datetime, tz: ZoneInfo) -> int:
        """Bring the rollups up to date; returns how many cases changed."""
        if self.roll is None or self.roll.since != window_start(now, tz) or self._token != owner.current():
            self._load(engine, now, tz, rebuild=False)
        try:
            if time.monotonic() - self._verified_at > self.verify_every:
                self._save(engine)  # the check counts the state the store holds
                if self._incomplete(engine, self.watermark):
                    self._load(engine, now, tz, rebuild=True)
                else:
                    self._load_stages(engine)
                self._verified_at = time.monotonic()
            rows, newest = self._read_changes(engine)
            self.part_hours.update(new for new, _ in rows)  # exact times may move within an hour
            changed = []
            for new, old in rows:
                old = self._pending.get(new["case_id"], old)  # applied in memory, not saved yet
                if not _same(old, new):
                    changed.append((new, old))
            for new, old in rows:
                self._see_stages(new)
            for new, old in changed:
                if old is not None:
                    self._apply(old, -1)
                self._apply(new, +1)
                self._pending[new["case_id"]] = new
            self.watermark = max(filter(None, [self.watermark, newest]), default=None)
            if time.monotonic() - self._saved_at >= self.save_every or len(self._pending) > SAVE_AT_MOST:
                self._save(engine)
        except Exception:
            self.roll = None  # memory may be ahead of the store now: load again next poll
            raise
        self.last_changed = len(changed)
        return len(changed)

    def _save(self, engine) -> None:
        """Write what memory holds beyond the store, in one transaction: the changed cases'
        contributions, their changes to the rollups, the watermark. Until then the store
        keeps an older but whole state; a poller loading it reads the changes since again."""
        if self._pending or self.watermark != self._saved_watermark:
            kpi_state.save(engine, list(self._pending.values()), self.watermark, *self._deltas(),
                           token=self._token)
        self._pending.clear()
        self._cells.clear()
        self._opens.clear()
        self._saved_watermark, self._saved_at = self.watermark, time.monotonic()

    def _read_changes(self, engine) -> tuple[list[tuple[dict, dict | None]], dt.datetime | None]:
        """(new, stored) contributions of the cases written since the last poll and not
        applied yet, and the newest updated_at read. Rows past the watermark are read
        first: the cases they move leave their old stamps, so that what remains to compare
        in the overlap is what committed late."""
        unseen: dict[int, tuple] = {}
        if self.watermark is None:  # nothing read yet (an empty store): everything is new
            newest = self._unseen(kpi_state.changed_since(engine, None), unseen)
            return list(unseen.values()), newest
        since = self.watermark - OVERLAP
        self._seen.forget_until(since)
        stamps = kpi_state.stamps_since(engine, since)
        newest = None
        if any(stamp > self.watermark for stamp, _, _ in stamps):
            newest = self._unseen(kpi_state.changed_since(engine, self.watermark), unseen)
        first = self._seen.first_unseen(stamps, until=self.watermark)
        if first is not None:  # a late commit: read again from its stamp
            late = self._unseen(kpi_state.changed_since(engine, first - dt.timedelta(microseconds=1)), unseen)
            newest = max(filter(None, [newest, late]), default=None)
        return list(unseen.values()), newest

    def _unseen(self, read, unseen: dict) -> dt.datetime | None:
        """Keep the rows not applied yet (a case read twice keeps its newest row and its
        stored contribution); returns the newest updated_at read."""
        newest = None
        for new, old in read:
            at = new.pop("updated_at")
            newest = at if newest is None or at > newest else newest
            if not self._seen.seen(new["case_id"], at):
                self._seen.add(new["case_id"], at)
                unseen[new["case_id"]] = (new, unseen[new["case_id"]][1] if new["case_id"] in unseen else old)
        return newest

    def open_rows(self) -> list[dict]:
        return [{"district": d, "category": c, "status": s, "n": n} for (d, c, s), n in self.open.items() if n]

    def overdue_rows(self, now: dt.datetime) -> list[dict]:
        exact = self.part_hours.deadlines(overdue_partial_hours(now))
        return self.deadlines.overdue_rows(exact, now)

    def _payload(self, engine, now: dt.datetime, tz: ZoneInfo) -> dict:
        self.part_hours.track(engine, part_hours_needed(all_periods(now, tz), now))
        return compute_cases(engine, now, tz, roll=self.roll, open_rows=self.open_rows(),
                             overdue_rows=self.overdue_rows(now), reference=self.reference,
                             part_hours=self.part_hours, recorded=self.recorded)

    def __call__(self, engine, now: dt.datetime, tz: ZoneInfo) -> dict:
        if self._rebuild_due:
            self._load(engine, now, tz, rebuild=True)
            self._rebuild_due = False
        report_rows_changed(self.refresh(engine, now, tz))
        payload = self._payload(engine, now, tz)
        if time.monotonic() >= self._check_at:
            payload = self._self_check(engine, now, tz, payload)
        return payload

    def _self_check(self, engine, now: dt.datetime, tz: ZoneInfo, payload: dict) -> dict:
        """Compare the payload's open and reported-today totals with counts on the cases.
        Conclusive only when nothing was written after the poll's read; a first mismatch
        is read again (a late commit inside the overlap is read by the next refresh), a
        second one fails the section and the next poll rebuilds."""
        today = all_periods(now, tz)["today"]
        mismatched = None
        for attempt in range(3):
            if attempt:
                self.refresh(engine, now, tz)
                payload = self._payload(engine, now, tz)
            open_n, reported_n, newest = kpi_state.live_totals(engine, today.start, floor_hour(now) + kpi_state.HOUR)
            if newest is not None and (self.watermark is None or newest > self.watermark):
                continue  # written since the read: counted again right away
            mine = (payload["open"]["total"], payload["periods_kpis"]["today"]["city"]["reported"]["value"])
            if mine == (open_n, reported_n):
                self.checks += 1
                self._check_at = time.monotonic() + self.check_every
                return payload
            if mismatched is not None:
                self.mismatches += 1
                self._rebuild_due = True
                log.error("KPI self-check: open %s, reported today %s; the cases say %s and %s; "
                          "rebuilding the state", *mine, open_n, reported_n)
                raise SelfCheckMismatch("self-check failed; rebuilding")
            mismatched = mine
        return payload  # inconclusive (writes keep coming): checked again next poll


def _same(old: dict | None, new: dict) -> bool:
    if old is None:
        return False
    for f in kpi_state.FIELDS:
        a, b = old[f], new[f]
        if isinstance(a, float) or isinstance(b, float):
            if abs((a or 0.0) - (b or 0.0)) > 1e-6:
                return False
        elif a != b:
            return False
    return True
