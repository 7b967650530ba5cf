"""The wall as of a week's end: the live wall (`/wall`, unchanged) served by an app of its
own whose cache holds a snapshot made of the week-end computations.

The export is handed a `WallServer`: a callable (settings, snapshot) -> context manager
yielding the base URL of a wall showing that snapshot. The default, `wall_process`,
builds that app in a child process (`python -m dashboard.weekly.wallserve`), because
building a Dash app inside the exporting process cannot work there: Dash keeps its pages
in module globals (a second app would replace the pages of an app already serving in
that process) and `dash.register_page` reads a context variable that exists only in the
thread that imported Dash (the scheduler's and "export now"'s threads do not have it).
A child process has neither problem, whatever thread or process starts it, and nothing
here imports the app factory (no import circle through callbacks/ and back to the
export).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable

from dashboard.settings import PROJECT_ROOT, SETTINGS, Settings
from dashboard.snapshot import Section, Snapshot, is_empty

log = logging.getLogger(__name__)

WallServer = Callable[[Settings, Snapshot], AbstractContextManager[str]]
READY = "WALL-READY "  # the child's first stdout line: READY + base URL
START_TIMEOUT_S = 90.0  # importing Dash and building the app, on a loaded 2-core machine
# the wall app answers only our own browser on the loopback (where logins exist)
OVERRIDES = {"POLLER_ENABLED": False, "REDIS_URL": "", "WALL_RELOAD_AT": "", "AUTH_ENABLED": False}


def week_snapshot(sections: dict, data_as_of: dt.datetime) -> Snapshot:
    """Every section fresh; computed now (so that the wall does not call it stale), data as
    of the week's end (shown in the wall's header)."""
    return Snapshot(computed_at=dt.datetime.now(data_as_of.tzinfo), data_as_of=data_as_of,
                    sections={name: Section("empty" if is_empty(d) else "fresh", d) for name, d in sections.items()})


def wall_settings(settings: Settings, cache_dir: Path) -> dict:
    """The settings of the wall app, JSON-able: the deployment's, with no poller, no Redis,
    no login and a cache folder of its own."""
    known = {s.name for s in SETTINGS}
    values = {**settings.values, **{k: v for k, v in OVERRIDES.items() if k in known},
              "LOCAL_CACHE_DIR": str(cache_dir)}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


@contextmanager
def wall_process(settings: Settings, snapshot: Snapshot):
    """Yield the base URL of a wall app served by a child process on a free loopback port,
    showing `snapshot`. The child stops when we close its stdin (or when we die: the pipe
    closes); its cache folder is thrown away afterwards."""
    with tempfile.TemporaryDirectory(prefix="cc-wall-") as folder:
        config = Path(folder) / "wall.json"
        config.write_text(json.dumps({"settings": wall_settings(settings, Path(folder) / "cache"),
                                      "snapshot": snapshot.to_json()}), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "dashboard.weekly.wallserve", str(config)],
                                cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": _pythonpath()},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            yield _await_ready(proc)
        finally:
            _stop(proc)


def _pythonpath() -> str:
    # the project first, so the child runs this checkout's code whatever the cwd of ours
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(PROJECT_ROOT)] + ([rest] if rest else []))


def _await_ready(proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the wall app did not start within {START_TIMEOUT_S:g} s")
            if sel.select(timeout=left):
                line = proc.stdout.readline()
                if line.startswith(READY):
                    return line[len(READY):].strip()
                if not line:  # the child ended; its reason is on stderr (our log)
                    raise RuntimeError(f"the wall app stopped before serving (exit code {proc.wait()})")


def _stop(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
        proc.wait(timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
    finally:
        proc.stdout.close()
