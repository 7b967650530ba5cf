"""The reports folder: published weeks, earlier versions, run records, temp space.

    REPORTS_DIR/
      2026-W47/city/            2026-W47-city.html .pdf .png .xlsx .json, manifest.json
      2026-W47/410105/          the same for a district
      2026-W47/versions/city-20261124T081502Z/   a version replaced by --force
      runs/2026-W47.json        the week's latest run (running / ok / failed) and its attempts
      .tmp/                     where an export builds its files before renaming them in
      weekly.lock, jobs.sqlite  the run lock (without Redis) and the scheduler's job store

A scope's folder appears by one rename of a complete folder, so a reader sees either
the whole report or none of it. Nothing here talks to the incident store.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from dashboard.weekly.weeks import WEEK_RE

SCOPE_RE = re.compile(r"^(city|[0-9A-Za-z]{1,12})$")
EXTENSIONS = ("html", "pdf", "png", "xlsx", "json")
MANIFEST = "manifest.json"
MAX_ATTEMPTS_KEPT = 20


def file_name(week: str, scope: str, ext: str) -> str:
    return f"{week}-{scope}.{ext}"


def _write_json(path: Path, value) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


class Archive:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- layout ----------------------------------------------------------------------
    def scope_dir(self, week: str, scope: str) -> Path:
        if not WEEK_RE.match(week) or not SCOPE_RE.match(scope):
            raise ValueError(f"not a week and scope: {week!r}, {scope!r}")
        return self.root / week / scope

    def exists(self, week: str, scope: str) -> bool:
        return (self.scope_dir(week, scope) / MANIFEST).is_file()

    def manifest(self, week: str, scope: str) -> dict | None:
        return _read_json(self.scope_dir(week, scope) / MANIFEST)

    def report_data(self, week: str, scope: str) -> dict | None:
        return _read_json(self.scope_dir(week, scope) / file_name(week, scope, "json"))

    def new_tmp(self) -> Path:
        path = self.root / ".tmp" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    # --- publishing ------------------------------------------------------------------
    def publish(self, week: str, scope: str, built: Path) -> Path | None:
        """Rename a complete scope folder into place. An existing one is moved to
        versions/ first (the caller checked --force); returns where it went."""
        target = self.scope_dir(week, scope)
        target.parent.mkdir(parents=True, exist_ok=True)
        kept = None
        if target.exists():
            old = self.manifest(week, scope) or {}
            try:
                when = dt.datetime.fromisoformat(old["generated_at"])
            except (KeyError, TypeError, ValueError):
                when = dt.datetime.now(dt.timezone.utc)
            stamp = when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            kept = target.parent / "versions" / f"{scope}-{stamp}"
            while kept.exists():
                kept = kept.with_name(kept.name + "-" + uuid.uuid4().hex[:4])
            kept.parent.mkdir(exist_ok=True)
            os.rename(target, kept)
        os.rename(built, target)
        return kept

    def versions(self, week: str, scope: str) -> list[str]:
        folder = self.root / week / "versions"
        if not WEEK_RE.match(week) or not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(scope + "-"))

    def clean_tmp(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def clean_abandoned(self) -> None:
        """Remove what exports that died left in .tmp/ (call under the export lock: then no
        export is building there)."""
        folder = self.root / ".tmp"
        if folder.is_dir():
            for entry in folder.iterdir():
                shutil.rmtree(entry, ignore_errors=True)

    # --- run records -----------------------------------------------------------------
    def _run_path(self, week: str) -> Path:
        if not WEEK_RE.match(week):
            raise ValueError(f"not a week: {week!r}")
        return self.root / "runs" / f"{week}.json"

    def run(self, week: str) -> dict | None:
        return _read_json(self._run_path(week))

    def record(self, week: str, status: str, **fields) -> dict:
        """Write the week's run status (running / ok / failed / refused); the history of
        attempts is kept (the newest MAX_ATTEMPTS_KEPT)."""
        path = self._run_path(week)
        path.parent.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        current = self.run(week) or {"week": week, "attempts": []}
        entry = {"status": status, "at": now, "host": f"{socket.gethostname()}:{os.getpid()}", **fields}
        if status == "running":
            current["attempts"] = (current.get("attempts", []) + [entry])[-MAX_ATTEMPTS_KEPT:]
        elif current.get("attempts"):
            current["attempts"][-1].update(entry)
        else:
            current["attempts"] = [entry]
        current.update({"status": status, "updated_at": now, "error": fields.get("error")})
        if status == "running":
            current["started_at"] = now
        _write_json(path, current)
        return current

    # --- listing ---------------------------------------------------------------------
    def weeks(self) -> list[str]:
        """Every week with a folder or a run record, newest first."""
        names = set()
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if WEEK_RE.match(p.name)}
            runs = self.root / "runs"
            if runs.is_dir():
                names |= {p.stem for p in runs.glob("*.json") if WEEK_RE.match(p.stem)}
        return sorted(names, reverse=True)

    def scopes(self, week: str) -> list[str]:
        folder = self.root / week
        if not WEEK_RE.match(week) or not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir()
                if p.name != "versions" and SCOPE_RE.match(p.name) and (p / MANIFEST).is_file()]

    def file_path(self, week: str, scope: str, name: str) -> Path | None:
        """The file to download, only if it is one of that report's files (or its manifest)
        inside the archive; None for anything else (no path leaves the folder)."""
        if not WEEK_RE.match(week) or not SCOPE_RE.match(scope):
            return None
        manifest = self.manifest(week, scope)
        if manifest is None or (name != MANIFEST and name not in manifest.get("files", {})):
            return None
        path = (self.scope_dir(week, scope) / name).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return None
        return path
