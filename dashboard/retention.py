"""Retention: what `python -m dashboard prune` removes, and from when (docs/retention.md).

- Occupancy readings older than OCCUPANCY_RAW_DAYS are folded per facility and hour into
  occupancy_hourly (the queries add both tables up: datasource/occupancy.py).
- The poller's per-case KPI state and its hourly rollup cells are dropped once they lie
  wholly before the poller's window: the "year" period compares with last year's same
  span, so everything from 1 January of last year stays (a day's margin for a poller
  whose clock is behind at the new year).
- Cases and their events are kept unless CASE_RETENTION_DAYS is set; open cases never go.
- Earlier report versions beyond REPORT_VERSIONS_KEPT per week and scope are deleted.

Every delete runs in batches of PRUNE_BATCH_ROWS rows, each its own transaction, and is
counted in /metrics (cc_pruned_rows_total{table}).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from dashboard import metrics
from dashboard.kpis.cases import window_start
from dashboard.periods import floor_hour, hour_key
from dashboard.settings import Settings
from datasource import kpi_state
from datasource import retention as store

log = logging.getLogger(__name__)

STATE_MARGIN = dt.timedelta(days=1)
TABLES = ("occupancy_readings", "kpi_case_state", "kpi_rollup", "cases", "case_events", "report_versions")


@dataclass(frozen=True)
class Cutoffs:
    occupancy: dt.datetime | None  # readings observed before this are folded (None: never)
    kpi: dt.datetime  # state and rollup cells wholly before this go (1 January of last year)
    cases: dt.datetime | None  # cases closed or voided before this go (None: never)

    @property
    def kpi_hour(self) -> str:
        return hour_key(self.kpi)


def cutoffs(settings: Settings, now: dt.datetime) -> Cutoffs:
    raw, keep = settings["OCCUPANCY_RAW_DAYS"], settings["CASE_RETENTION_DAYS"]
    return Cutoffs(occupancy=floor_hour(now - dt.timedelta(days=raw)) if raw else None,
                   kpi=window_start(now - STATE_MARGIN, settings.tz),
                   cases=now - dt.timedelta(days=keep) if keep else None)


@dataclass
class PruneReport:
    now: dt.datetime
    cutoffs: Cutoffs
    keep_versions: int
    removed: Counter = field(default_factory=Counter)  # table -> rows
    versions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self, tz) -> list[str]:
        def at(t: dt.datetime) -> str:
            return t.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        c, r = self.cutoffs, self.removed
        out = [f"prune at {at(self.now)} ({self.seconds:.1f} s)"]
        if c.occupancy is None:
            out.append("  occupancy readings: all kept (OCCUPANCY_RAW_DAYS is empty)")
        else:
            out.append(f"  occupancy readings observed before {at(c.occupancy)}: {r['occupancy_readings']} "
                       f"folded into occupancy_hourly (per facility and hour) and deleted")
        out.append(f"  KPI state before {at(c.kpi)}: {r['kpi_case_state']} per-case rows, "
                   f"{r['kpi_rollup']} hourly rollup cells deleted")
        if c.cases is None:
            out.append("  cases and events: all kept (CASE_RETENTION_DAYS is empty)")
        else:
            out.append(f"  cases closed or voided before {at(c.cases)}: {r['cases']} cases, "
                       f"{r['case_events']} events deleted (open cases are never deleted)")
        out.append(f"  report versions beyond {self.keep_versions} per week and scope: "
                   f"{len(self.versions)} deleted" + "".join(f"\n    {v}" for v in self.versions))
        out += [f"  {n}" for n in self.notes]
        return out


def _batches(step, limit: int, count) -> None:
    """Run `step()` (rows removed per table, the loop's own first) until a batch comes back short."""
    while True:
        removed = step()
        for table, n in removed.items():
            count(table, n)
        if next(iter(removed.values())) < limit:
            return


def prune_store(engine, settings: Settings, now: dt.datetime, count=lambda table, n: None) -> PruneReport:
    """Everything the store holds beyond retention, batch by batch; `count(table, n)` is
    called after each batch (the metrics)."""
    cut = cutoffs(settings, now)
    report = PruneReport(now=now, cutoffs=cut, keep_versions=settings["REPORT_VERSIONS_KEPT"])
    limit = settings["PRUNE_BATCH_ROWS"]

    def counted(table, n):
        report.removed[table] += n
        count(table, n)

    if cut.cases is not None:
        _batches(lambda: store.delete_cases(engine, cut.cases, cut.kpi_hour, limit), limit, counted)
    _batches(lambda: {"kpi_case_state": kpi_state.retire_state(engine, cut.kpi_hour, limit)}, limit, counted)
    _batches(lambda: {"kpi_rollup": kpi_state.prune_cells(engine, cut.kpi_hour, limit)}, limit, counted)
    if cut.occupancy is not None:
        _batches(lambda: {"occupancy_readings": store.fold_occupancy(engine, cut.occupancy, limit)}, limit, counted)
    return report


def prune_reports(settings: Settings, report: PruneReport, count=lambda table, n: None) -> None:
    """Earlier report versions beyond REPORT_VERSIONS_KEPT, under the export lock (an
    export moves versions there); skipped, and said so, while an export runs."""
    from dashboard.weekly.archive import Archive
    from dashboard.weekly.lock import Busy, run_lock
    from dashboard.weekly.prune import prune_versions

    archive = Archive(settings.reports_dir)
    if not archive.root.is_dir():
        return
    try:
        with run_lock(settings, archive.root):
            report.versions = prune_versions(archive, settings["REPORT_VERSIONS_KEPT"])
    except Busy as exc:
        report.notes.append(f"report versions not pruned this time: {exc}")
        return
    report.removed["report_versions"] += len(report.versions)
    count("report_versions", len(report.versions))


def prune(settings: Settings, engine, now: dt.datetime | None = None, cache=None) -> PruneReport:
    """The whole prune: the store, then the reports folder. With `cache`, each batch is
    counted in /metrics."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.timezone.utc)
    count = (lambda table, n: metrics.count_pruned(cache, table, n)) if cache is not None else (lambda t, n: None)
    report = prune_store(engine, settings, now, count)
    prune_reports(settings, report, count)
    report.seconds = time.monotonic() - started
    log.info("pruned %s", dict(report.removed))
    return report


def scheduled_prune(settings: Settings) -> None:
    """The report scheduler's daily job (PRUNE_CRON)."""
    from dashboard.cache import Cache
    engine = settings.engine()
    try:
        for line in prune(settings, engine, cache=Cache.from_settings(settings)).lines(settings.tz):
            log.info("%s", line)
    except Exception:
        log.exception("the scheduled prune failed; it runs again at the next PRUNE_CRON time")
    finally:
        engine.dispose()
