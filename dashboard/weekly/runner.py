"""One export: a week, for one scope or all of them, complete or refused.

    lock -> "already exists?" -> record running -> compute (store read once) -> build every
    file of every scope in a temp folder -> check them -> rename each scope into place
    -> record ok.   Any failure: nothing is published, the run is recorded as failed
    (with the reason, shown on /snapshots) and logged; the scheduler tries again.

A full reports disk is such a failure: the temp folder and any half-written record are
removed, one line is logged (no traceback), and the run is recorded as failed if the
record can still be written; the next run starts clean. A run that died (killed, host
lost) leaves its record "running": whoever next holds the export lock finds no export
running and settles it (`reconcile`).

The wall's picture comes from a `WallServer` handed in (default: wallshot.wall_process,
the wall app in a child process), so the export runs the same from the CLI, the
scheduler's thread or a web request's thread, and never imports the app factory.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from dashboard.build import build_id
from dashboard.kpis.common import CITY
from dashboard.poller import short_reason
from dashboard.profile import with_profile
from dashboard.settings import Settings
from dashboard.weekly.archive import MANIFEST, Archive, file_name
from dashboard.weekly.browser import WALL_SIZE, photograph, print_pdfs
from dashboard.weekly.compute import LAST_INSTANT, compute_week
from dashboard.weekly.lock import Busy, run_lock
from dashboard.weekly.report import KINDS, build_report
from dashboard.weekly.wallshot import WallServer, wall_process, week_snapshot
from dashboard.weekly.weeks import Week, check_finished, parse_week
from datasource import kpi_queries as kq
from layouts.weekly.html import csp_hash, print_shell, render_report, script_hashes
from layouts.weekly.workbook import build_workbook

log = logging.getLogger(__name__)

SCOPE_ARG = re.compile(r"^(all|city|[0-9A-Za-z]{1,12})$")
MIN_PDF_PAGES = 3
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
FORMATS = ("compute", "html", "xlsx", "pdf", "png", "publish")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)  # executable inline scripts (no type=)


class ScopeError(ValueError):
    """A --scope that is neither all, city nor a district of the store."""


@dataclass
class ExportResult:
    status: str  # ok | exists | busy | failed
    week: str
    scopes: list[str] = field(default_factory=list)  # built
    skipped: list[str] = field(default_factory=list)  # already there (without --force)
    kept: list[str] = field(default_factory=list)  # earlier versions moved aside by --force
    error: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def resolve_scopes(scope: str, codes: list[str]) -> list[str]:
    if scope == "all":
        return [CITY] + codes
    if scope == CITY or scope in codes:
        return [scope]
    raise ScopeError(f"--scope {scope!r} is neither all, city nor one of the store's districts "
                     f"({', '.join(codes)})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_files(folder: Path, week: str, scope: str) -> None:
    """Every file there, not empty, and of its kind: a refusal names the one that is not."""
    def path(ext):
        p = folder / file_name(week, scope, ext)
        if not p.is_file() or p.stat().st_size == 0:
            raise RuntimeError(f"{p.name} is missing or empty")
        return p

    html = path("html").read_text(encoding="utf-8")
    if 'id="report-data"' not in html:
        raise RuntimeError("the HTML report has no embedded data")
    # the archive serves the report with a policy allowing exactly these scripts (manifest
    # "html_script_hashes"): a report holding any other would show no charts
    if sorted(csp_hash(s) for s in INLINE_SCRIPT.findall(html)) != sorted(script_hashes()):
        raise RuntimeError("the HTML report's scripts are not the ones its content security policy allows")
    pdf = path("pdf").read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    if not pdf.startswith(b"%PDF") or pages < MIN_PDF_PAGES:
        raise RuntimeError(f"the PDF has {pages} pages, expected {MIN_PDF_PAGES} or more")
    png = path("png").read_bytes()
    if png[:8] != b"\x89PNG\r\n\x1a\n" or struct.unpack(">II", png[16:24]) != (WALL_SIZE["width"], WALL_SIZE["height"]):
        raise RuntimeError("the wall's PNG is not a 1920x1080 picture")
    if path("xlsx").read_bytes()[:2] != b"PK":
        raise RuntimeError("the workbook is not an XLSX file")
    json.loads(path("json").read_text(encoding="utf-8"))


class Exporter:
    """Builds the files of one week for some scopes into a temp folder."""

    def __init__(self, settings: Settings, engine, archive: Archive, wall: WallServer = wall_process):
        self.settings, self.engine, self.archive, self.wall = settings, engine, archive, wall
        self.timings = {k: 0.0 for k in FORMATS}

    def _timed(self, name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[name] += time.perf_counter() - t0

    def build(self, week: Week, scopes: list[str], tmp: Path, figures=None, trigger: str = "cli") -> dict:
        figures = figures or self._timed("compute", compute_week, self.engine, week)
        categories = {c["code"]: c["name_zh"] for c in kq.categories(self.engine)}
        generated_at = dt.datetime.now(week.tz).isoformat(timespec="seconds")
        version = build_id(self.settings)
        title = self.settings["DASHBOARD_TITLE"]
        lang = self.settings["DASHBOARD_LANGUAGE"]
        reports, pages = {}, {}
        for scope in scopes:
            folder = tmp / scope
            folder.mkdir()
            report = build_report(figures, scope, generated_at=generated_at, app_version=version)
            reports[scope] = report
            pages[scope] = self._timed("html", self._write_html, folder / file_name(week.label, scope, "html"),
                                       report, title, categories, week, lang)
            (folder / file_name(week.label, scope, "json")).write_text(
                json.dumps(report, ensure_ascii=False), encoding="utf-8")
            xlsx = self._timed("xlsx", build_workbook, report["tables"],
                               title=f"{title} {week.label} {report['scope_name']}", lang=lang)
            (folder / file_name(week.label, scope, "xlsx")).write_bytes(xlsx)
        chromium = self.settings["REPORT_CHROMIUM"]
        self._timed("pdf", print_pdfs, chromium, print_shell(),
                    [(pages[s].title, pages[s].body_with_data(), tmp / s / file_name(week.label, s, "pdf"))
                     for s in scopes])
        snapshot = week_snapshot(figures.wall_sections, week.end - LAST_INSTANT)
        t0 = time.perf_counter()
        with self.wall(self.settings, snapshot) as base:
            photograph(chromium, [(f"{base}/wall" + ("" if s == CITY else f"?district={s}"),
                                   tmp / s / file_name(week.label, s, "png")) for s in scopes],
                       week.end - LAST_INSTANT)
        self.timings["png"] += time.perf_counter() - t0
        for scope in scopes:
            self._timed("publish", self._seal, tmp / scope, week, scope, reports[scope], figures, trigger)
        return reports

    @staticmethod
    def _write_html(path: Path, report: dict, title: str, categories: dict, week: Week, lang: str):
        page = render_report(report, kinds=KINDS, title=title, categories=categories, tz=week.tz, lang=lang)
        path.write_text(page.html(), encoding="utf-8")
        return page

    @staticmethod
    def _seal(folder: Path, week: Week, scope: str, report: dict, figures, trigger: str) -> None:
        """Check the files, then write the manifest (last: a folder with a manifest is complete)."""
        check_files(folder, week.label, scope)
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(folder.iterdir()) if p.name != MANIFEST}
        manifest = {"format": 1, "week": week.label, "scope": scope, "scope_name": report["scope_name"],
                    "start": report["start"], "end": report["end"], "timezone": report["timezone"],
                    "data_as_of": report["data_as_of"], "store_as_of": figures.store_as_of,
                    "generated_at": report["generated_at"], "app_version": report["app_version"],
                    "trigger": trigger, "files": files, "html_script_hashes": script_hashes(),
                    "tables": report["tables"]}
        (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def _reason(exc: BaseException) -> str:
    if disk_full(exc):
        return f"reports disk full: {exc.strerror} ({getattr(exc, 'filename', None) or 'writing'})"[:200]
    return short_reason(exc)


def export_week(settings: Settings, week: str | Week, *, scope: str = "all", force: bool = False,
                now: dt.datetime | None = None, engine=None, trigger: str = "cli",
                wall: WallServer | None = None) -> ExportResult:
    """Export a finished week. A malformed or unfinished week (WeekError) or a malformed
    scope (ScopeError) raises before anything is written; everything else is a result.
    `wall` serves the wall to photograph (default: a child process, see wallshot.py)."""
    settings = with_profile(settings, engine)  # weeks in the city profile's time zone
    tz = settings.tz
    week = week if isinstance(week, Week) else parse_week(week, tz)
    check_finished(week, now or dt.datetime.now(tz))
    if not SCOPE_ARG.match(scope or ""):
        raise ScopeError(f"--scope {scope!r}: expected all, city or a district code")
    archive = Archive(settings.reports_dir)
    started = time.perf_counter()
    own_engine = engine is None
    if own_engine:
        engine = settings.engine()
    try:
        archive.root.mkdir(parents=True, exist_ok=True)
        with run_lock(settings, archive.root):
            return _export_locked(settings, engine, archive, week, scope, force, trigger, started,
                                  wall or wall_process)
    except Busy as exc:
        log.info("weekly export of %s not started: %s", week.label, exc)
        return ExportResult("busy", week.label, error=str(exc))
    except OSError as exc:  # the reports folder or its lock file cannot be written (a full disk)
        log.error("weekly export of %s refused: %s", week.label, _reason(exc))
        return ExportResult("failed", week.label, error=_reason(exc), seconds=time.perf_counter() - started)
    finally:
        if own_engine:
            engine.dispose()


def reconcile(settings: Settings) -> dict[str, str]:
    """Settle the records of exports that died ("running" with no export running): takes
    the export lock without waiting; returns {} while an export holds it."""
    archive = Archive(settings.reports_dir)
    try:
        with run_lock(settings, archive.root):
            return _reconcile(archive)
    except Busy:
        return {}
    except OSError as exc:
        log.error("weekly export records not settled: %s", _reason(exc))
        return {}


def _reconcile(archive: Archive) -> dict[str, str]:
    settled = archive.reconcile()
    for week, status in settled.items():
        log.warning("the export of %s had stopped without finishing; its run is now recorded %s", week, status)
    return settled


def _export_locked(settings, engine, archive: Archive, week: Week, scope: str, force: bool, trigger: str,
                   started: float, wall: WallServer) -> ExportResult:
    try:
        _reconcile(archive)  # we hold the lock: a record still "running" is a dead run's
    except OSError as exc:
        return _failed(archive, week, [scope], _reason(exc), started, trigger)
    try:
        codes = [d["code"] for d in kq.districts(engine)]
    except (SQLAlchemyError, OSError) as exc:
        return _failed(archive, week, [scope], f"store unreachable: {short_reason(exc)}", started, trigger)
    scopes = resolve_scopes(scope, codes)
    todo = [s for s in scopes if force or not archive.exists(week.label, s)]
    skipped = [s for s in scopes if s not in todo]
    if not todo:
        log.info("weekly report %s already exists for %s; add --force to replace it", week.label, ", ".join(skipped))
        last = archive.run(week.label)
        if last is not None and last.get("status") in ("running", "failed") and scope == "all":
            # every scope is published (a run that died after its renames): the week is done
            try:
                archive.record(week.label, "ok", scopes=[], trigger=trigger, note="found complete")
            except OSError as exc:
                log.error("weekly report %s is complete; its run record not updated: %s", week.label, _reason(exc))
        return ExportResult("exists", week.label, skipped=skipped, seconds=time.perf_counter() - started)
    exporter, tmp, recorded = Exporter(settings, engine, archive, wall), None, False
    try:
        archive.record(week.label, "running", scopes=todo, trigger=trigger)
        recorded = True
        archive.clean_abandoned()
        tmp = archive.new_tmp()
        exporter.build(week, todo, tmp, trigger=trigger)
        kept = [k for k in (archive.publish(week.label, s, tmp / s) for s in todo) if k is not None]
    except Exception as exc:  # complete or refuse: whatever failed, nothing was published
        if not disk_full(exc):  # a full disk is no bug: its one line comes from _failed
            log.exception("weekly export of %s failed", week.label)
        return _failed(archive, week, todo, _reason(exc), started, trigger, exporter.timings,
                       new_attempt=not recorded)
    finally:
        if tmp is not None:
            archive.clean_tmp(tmp)
    seconds = time.perf_counter() - started
    try:
        archive.record(week.label, "ok", scopes=todo, trigger=trigger, seconds=round(seconds, 2))
    except OSError as exc:  # published and complete; the next export or reconcile settles the record
        log.error("weekly report %s published; its run record not written: %s", week.label, _reason(exc))
    log.info("weekly report %s exported for %d scope(s) in %.1f s", week.label, len(todo), seconds)
    return ExportResult("ok", week.label, scopes=todo, skipped=skipped, kept=[str(k) for k in kept],
                        seconds=seconds, timings=exporter.timings)


def _failed(archive: Archive, week: Week, scopes, reason: str, started: float, trigger: str,
            timings: dict | None = None, new_attempt: bool = True) -> ExportResult:
    try:
        archive.record(week.label, "failed", scopes=list(scopes), trigger=trigger, error=reason,
                       new_attempt=new_attempt)
        log.error("weekly export of %s refused: %s", week.label, reason)
    except OSError as exc:  # one line: the next run with the lock settles the record (reconcile)
        log.error("weekly export of %s refused: %s; the failure could not be recorded: %s",
                  week.label, reason, _reason(exc))
    return ExportResult("failed", week.label, error=reason, seconds=time.perf_counter() - started,
                        timings=timings or {})
