"""Shared pieces of the weekly report tests: a seeded store per backend, settings, readers."""
from __future__ import annotations

import datetime as dt
import json
import pickle
import re
import struct
import subprocess
import time
import unicodedata
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import and_, create_engine, func, or_, select, text

from dashboard.settings import SETTINGS, Settings
from datasource import schema
from tests.conftest import BACKLOG, seeded_store_url

TZ = ZoneInfo("Asia/Shanghai")
WEEK = "2026-W47"  # Monday 16 to Sunday 22 November 2026
WEEK_START = dt.datetime(2026, 11, 16, tzinfo=TZ)
WEEK_END = dt.datetime(2026, 11, 23, tzinfo=TZ)
# the store's history ends on the Monday after the week, 10:00 in Shanghai
SEED_NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
MONDAY_8AM = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ)  # the default schedule's run


def seeded_store(backend: str, request, folder: Path, *, days: float = 2, cases: int = 3000, seed_no: int = 31) -> str:
    """A store of `backend` of the caller's own with the demo city up to SEED_NOW (`days` of
    parking readings)."""
    return seeded_store_url(backend, request, folder, profile=BACKLOG, seed=seed_no, now=SEED_NOW, total_cases=cases,
                            occupancy_days=days)


def settings_for(url: str, reports: Path, **extra) -> Settings:
    """Settings for a test (options a checkout does not know are left out)."""
    known = {s.name for s in SETTINGS}
    values = {"DATABASE_URL": url, "REPORTS_DIR": str(reports), "REDIS_URL": "", "AUTH_ENABLED": False,
              "POLLER_ENABLED": False, "LOCAL_CACHE_DIR": str(reports.parent / "cache"), **extra}
    return Settings.from_env({k: v for k, v in values.items() if k in known})


# --- an oracle: the week's figures straight from the store ----------------------------
def _count(engine, *where, table=schema.Case) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def oracle(engine, district: str | None = None) -> dict:
    C, V = schema.Case, schema.EnterpriseVisit
    start, end = WEEK_START, WEEK_END
    d = [C.district_code == district] if district else []
    dv = [V.district_code == district] if district else []
    filed = [C.filed_at >= start, C.filed_at < end, C.voided.is_(False), *d]
    return {
        "reported": _count(engine, C.reported_at >= start, C.reported_at < end, *d),
        "closed": _count(engine, C.closed_at >= start, C.closed_at < end, *d),
        "filed": _count(engine, *filed),
        "filed_closed_by_end": _count(engine, *filed, C.closed_at.is_not(None), C.closed_at < end),
        "open_at_end": _count(engine, C.filed_at < end, C.voided.is_(False),
                              or_(C.closed_at.is_(None), C.closed_at >= end), *d),
        "visits": _count(engine, V.visited_at >= start, V.visited_at < end, *dv, table=V),
    }


def district_names(engine, column: str = "short_zh") -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(schema.District.code, getattr(schema.District, column))).all())


# --- readers -------------------------------------------------------------------------
def embedded_report(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "no embedded report data"
    return json.loads(m.group(1))


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True).stdout
    return unicodedata.normalize("NFKC", out.decode("utf-8"))


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def png_decoded(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG after inflating its pixel data (so it is decodable)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = header[:4]
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[colour]
    assert len(zlib.decompress(idat)) == height * (1 + width * channels * depth // 8)
    return width, height


def between(col, start, end):
    return and_(col >= start, col < end)


# --- the scheduler's job store, archived weeks ------------------------------------------
def stored_next_run(settings, when: dt.datetime) -> None:
    """Set the stored weekly job's next run (as if the app had been down when it fell due),
    in the job store's own table: a scheduler's state is the row and its pickled job."""
    from dashboard.weekly.schedule import JOB_ID

    engine = create_engine(f"sqlite:///{settings.reports_dir / 'jobs.sqlite'}")
    with engine.begin() as conn:
        (raw,) = conn.execute(text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": JOB_ID}).one()
        state = pickle.loads(raw)
        state["next_run_time"] = when
        conn.execute(text("UPDATE apscheduler_jobs SET next_run_time = :t, job_state = :s WHERE id = :id"),
                     {"t": when.timestamp(), "s": pickle.dumps(state, pickle.HIGHEST_PROTOCOL), "id": JOB_ID})
    engine.dispose()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def run_status(archive, week: str) -> str | None:
    run = archive.run(week)
    return run and run.get("status")


def leftovers(root: Path) -> list[str]:
    """Temp files and folders an export left in the reports folder."""
    found = [str(p.relative_to(root)) for p in root.rglob("*.tmp") if p.is_file()]  # not the .tmp/ folder
    tmp = root / ".tmp"
    if tmp.is_dir():
        found += [str(p.relative_to(root)) for p in tmp.iterdir()]
    return found


def assert_complete_week(archive, week: str, scopes: list[str]) -> None:
    """Each scope published with its manifest, and every file opened back: the HTML's
    embedded data, the PDF's pages, the PNG decoded, the workbook's sheets."""
    from openpyxl import load_workbook

    from dashboard.weekly.archive import file_name

    assert sorted(archive.scopes(week)) == sorted(scopes)
    for scope in scopes:
        folder = archive.scope_dir(week, scope)
        manifest = archive.manifest(week, scope)
        assert manifest["week"] == week and manifest["scope"] == scope
        names = {ext: folder / file_name(week, scope, ext) for ext in ("html", "pdf", "png", "xlsx")}
        assert set(n.name for n in names.values()) <= set(manifest["files"])
        report = embedded_report(names["html"].read_text(encoding="utf-8"))
        assert (report["week"], report["scope"]) == (week, scope)
        assert pdf_pages(names["pdf"]) >= 3 and week in pdf_text(names["pdf"])
        assert png_decoded(names["png"]) == (1920, 1080)
        workbook = load_workbook(names["xlsx"])
        assert workbook.sheetnames == ["各区案件指标", "助企服务", "停车治理"]
        assert workbook["各区案件指标"].max_row >= 2
    assert leftovers(archive.root) == []
