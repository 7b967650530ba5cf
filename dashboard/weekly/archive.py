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
    """Write whole or not at all: a temp file renamed over `path`, removed if the write
    fails (a full disk leaves no half-written record and no stray temp file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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

    def record(self, week: str, status: str, *, new_attempt: bool | None = None, **fields) -> dict:
        """Write the week's run status (running / ok / failed / refused); the history of
        attempts is kept (the newest MAX_ATTEMPTS_KEPT). "running" starts a new attempt,
        the others end the latest one (or start one: `new_attempt`, for a run whose
        "running" could not be written)."""
        path = self._run_path(week)
        path.parent.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        current = self.run(week) or {"week": week, "attempts": []}
        entry = {"status": status, "at": now, "host": f"{socket.gethostname()}:{os.getpid()}", **fields}
        starts = status == "running" if new_attempt is None else new_attempt
        if starts:
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

    def reconcile(self) -> dict[str, str]:
        """Settle the records of runs that died: call it holding the export lock, when no
        export can be running, so every record still "running" is a dead one. It becomes
        "failed" with the reason, or "ok" when all its scopes were published before it
        died. Returns {week: new status}."""
        settled = {}
        for week in self.weeks():
            run = self.run(week)
            if not run or run.get("status") != "running":
                continue
            last = (run.get("attempts") or [{}])[-1]
            scopes, host = last.get("scopes") or [], last.get("host", "?")  # the dead run's host:pid stays
            if scopes and all(self.exists(week, s) for s in scopes):
                self.record(week, "ok", host=host, note="found complete after the run stopped")
                settled[week] = "ok"
                continue
            self.record(week, "failed", host=host, error=f"interrupted: the export {host} started at "
                                                         f"{run.get('started_at', '?')} stopped without finishing")
            settled[week] = "failed"
        return settled

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
