"""Helpers shared by the importer tests."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from datasource.importer import run_import

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def utc(text: str) -> dt.datetime:
    """A Shanghai wall-clock time as aware UTC."""
    return dt.datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def write_csv(path: Path, header, rows, encoding="utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def run(engine, path: Path, kind: str = "cases", **kw):
    """Import one file, its rejects beside it as <stem>.rej.csv."""
    kw.setdefault("rejects", path.with_name(path.stem + ".rej.csv"))
    kw.setdefault("tz", "Asia/Shanghai")
    return run_import(engine, [path], kind, kw.pop("mapping", None), kw.pop("fmt", None), **kw)
