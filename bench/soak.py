"""A bounded soak: two hosts on one PostgreSQL under walls, leaders and faults.

    python bench/soak.py               # 10 minutes (make soak)
    python bench/soak.py --minutes 1   # a short run to try the script

What runs, all on loopback and all started (and stopped) by this script:
- a fresh PostgreSQL database (seeded with the demo city, ~100k cases ending now; dropped
  at the end) and a redis-server of its own on a free port;
- two hosts of one deployment, each a gunicorn (`python -m dashboard serve`,
  POLLER_ENABLED=false) and its own poller (`python -m dashboard poll`), with its own
  LOCAL_CACHE_DIR; one Redis and one CACHE_PREFIX, as in docs/deployment.md;
- the simulator writing (bench/_soak_sim.py: the demo simulator, counting its commits);
- a supervisor that restarts any of them that exits, 2 s later (systemd's RestartSec);
- 100 wall displays (display token, refresh every PAGE_REFRESH_SECONDS) and 20 leaders
  (logged in through the /login form; /browse pages, their callbacks, sometimes a CSV);
- faults, once each: the store cut (ALLOW_CONNECTIONS false and every backend of the
  soak database terminated, for 30 s), Redis killed (SIGKILL, back 20 s later) and the
  poller holding the store lease killed (SIGKILL; the supervisor restarts it).

It prints errors by endpoint and status, p95 per endpoint, each process's RSS at start
and end, each fault's recovery time, rows lost, and the wall's figures against SQL once
the simulator has stopped and one more poll has run. Exit status 1 when rows were lost,
the final figures differ, or a fault did not recover.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.wall_helpers import WallDisplay  # noqa: E402
from dashboard.accounts import hash_password, new_display_token  # noqa: E402
from dashboard.settings import PROJECT_ROOT  # noqa: E402
from datasource import users  # noqa: E402
from datasource.demo.seed import seed  # noqa: E402
from datasource.engine import make_engine  # noqa: E402
from datasource.migrate import upgrade  # noqa: E402
from datasource.schema import OPEN_STATUSES, RUNNING_STATUSES  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", os.environ.get(
    "TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "soak-" + secrets.token_hex(8)
SIM_PREFIX = "ZZ%-L%"  # external ids of the simulator's cases (the seed's are ZZ<district>-<n>)
OPEN_SQL = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
RUNNING_SQL = ", ".join(f"'{s}'" for s in RUNNING_STATUSES)
BROWSE_SEARCHES = ["?period=today", "?period=week", "?period=month", "?period=year", "?list=overdue",
                   "?period=month&district=410105", "?period=week&district=410102",
                   "?period=month&category=S01&source=hotline", "?period=week&list=overdue"]
T0 = time.monotonic()


def now_s() -> float:
    return time.monotonic() - T0


def say(msg: str) -> None:
    print(f"[{now_s():7.1f} s] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))] if values else float("nan")


# --- processes and their supervisor ----------------------------------------------------
class Proc:
    """One supervised process: restarted RESTART_SECONDS after it exits, unless held."""

    RESTART_SECONDS = 2.0

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log = open(log_dir / f"{name}.log", "ab")
        self.popen: subprocess.Popen | None = None
        self.held = False  # a fault keeps it down for a while
        self.exited_at: float | None = None
        self.restarts: list[tuple[float, int | None]] = []  # (time, exit code)
        self.start()

    def start(self):
        self.popen = subprocess.Popen(self.argv, cwd=PROJECT_ROOT, env=self.env, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.exited_at = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def tick(self):
        if self.popen is None or self.popen.poll() is None:
            return
        if self.exited_at is None:
            self.exited_at = now_s()
            say(f"{self.name} (pid {self.popen.pid}) exited with {self.popen.returncode}")
        if not self.held and now_s() - self.exited_at >= self.RESTART_SECONDS:
            self.restarts.append((now_s(), self.popen.returncode))
            self.start()
            say(f"supervisor restarted {self.name}: pid {self.popen.pid}")

    def stop(self, timeout: float = 30):
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


class Supervisor(threading.Thread):
    def __init__(self, procs: list[Proc]):
        super().__init__(daemon=True)
        self.procs = procs
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.25):
            for p in self.procs:
                p.tick()


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def memory(procs: list[Proc]) -> dict[str, int]:
    """name -> RSS in KiB; a gunicorn's workers are listed one by one."""
    out = {}
    for p in procs:
        if p.pid is None or p.popen.poll() is not None:
            continue
        out[f"{p.name} (pid {p.pid})"] = rss_kb(p.pid) or 0
        if p.name.startswith("web"):
            for i, c in enumerate(sorted(children(p.pid))):
                out[f"{p.name} worker {i + 1} (pid {c})"] = rss_kb(c) or 0
    return out


# --- HTTP -------------------------------------------------------------------------------
class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[float, str, str, float]] = []  # (time, endpoint, status, seconds)

    def add(self, endpoint: str, status, seconds: float):
        with self.lock:
            self.rows.append((now_s(), endpoint, str(status), seconds))


class Session:
    """One client's keep-alive connection and cookies; every request is recorded."""

    def __init__(self, port: int, stats: Stats):
        self.port, self.stats = port, stats
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, endpoint: str, method: str, path: str, body: bytes | None = None,
                ctype: str | None = None) -> tuple[int, bytes, http.client.HTTPResponse | None]:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if ctype:
            headers["Content-Type"] = ctype
        t0 = time.perf_counter()
        for attempt in (1, 2):
            reused = self.conn is not None
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                # a kept-alive connection the server closed while idle (GUNICORN_KEEPALIVE):
                # a browser sends the request again on a new one, and so does this client
                if attempt == 1 and reused and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                                                ConnectionResetError)):
                    continue
                self.stats.add(endpoint, type(exc).__name__, time.perf_counter() - t0)
                return 0, b"", None
        self.stats.add(endpoint, resp.status, time.perf_counter() - t0)
        for c in resp.msg.get_all("Set-Cookie") or []:
            name, _, value = c.split(";")[0].partition("=")
            self.cookies[name.strip()] = value
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, data, resp

    def post_json(self, endpoint: str, body: dict) -> tuple[int, bytes]:
        status, data, _ = self.request(endpoint, "POST", "/_dash-update-component", json.dumps(body).encode(),
                                       "application/json")
        return status, data


def num(value) -> float:
    """A card's data-value (text in the page) as a number; no value is -1."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return -1.0


def cards(sent: dict) -> dict:
    """data-kpi -> data-value of the stat cards in a wall refresh's answer."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and "data-kpi" in props and "data-value" in props \
                    and "data-district" not in props:
                found[props["data-kpi"]] = props["data-value"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    if "ov-cards-body" in sent:
        walk(sent["ov-cards-body"])
    return found


class Wall:
    """A display on one host: signs in with its token, refreshes, keeps what it shows."""

    def __init__(self, port: int, token: str, stats: Stats, endpoint: str = "wall refresh"):
        self.s = Session(port, stats)
        self.token, self.endpoint = token, endpoint
        self.head: dict | None = None
        self.cards: dict = {}
        self.display = WallDisplay(self._post)
        self.signed_in = False

    def _post(self, body):
        return self.s.post_json(self.endpoint, body)

    def refresh(self) -> int:
        if not self.signed_in:
            status, _, _ = self.s.request("GET /wall?token=", "GET", f"/wall?token={self.token}")
            self.signed_in = status == 200
            if not self.signed_in:
                return status
        status, raw, sent = self.display.refresh()
        if status == 200:
            if "wall-head" in sent:
                self.head = sent["wall-head"]["data"]
            self.cards.update(cards(sent))
        elif status in (302, 401, 403):
            self.signed_in = False
        return status


def wall_loop(port, token, stats, stop, refresh, deadline, max_refreshes):
    time.sleep(random.random() * refresh)  # the displays were switched on at different moments
    w = Wall(port, token, stats)
    nxt = time.monotonic()
    for _ in range(max_refreshes):
        if stop.is_set() or time.monotonic() > deadline:
            return
        w.refresh()
        nxt += refresh
        stop.wait(max(0.0, nxt - time.monotonic()))


def login(s: Session, username: str) -> bool:
    status, page, _ = s.request("GET /login", "GET", "/login")
    m = re.search(rb'name="csrf_token" value="([^"]+)"', page or b"")
    if status != 200 or not m:
        return False
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                   "csrf_token": m.group(1).decode(), "next": "/browse"}).encode()
    status, _, _ = s.request("POST /login", "POST", "/login", form, "application/x-www-form-urlencoded")
    return status == 302


def render_body(search: str) -> dict:
    outs = [{"id": i, "property": p} for i, p in (("browse-summary", "children"), ("browse-body", "children"),
                                                 ("browse-cases", "children"), ("browse-cases-key", "data"))]
    return {"output": "..browse-summary.children...browse-body.children...browse-cases.children..."
                      "browse-cases-key.data..", "outputs": outs,
            "inputs": [{"id": "browse-location", "property": "search", "value": search}],
            "state": [{"id": "browse-page", "property": "data", "value": "cases"},
                      {"id": "browse-cases-key", "property": "data", "value": None}],
            "changedPropIds": ["browse-location.search"]}


def grid_body(output: str, search: str, start: int) -> dict:
    grid = {"type": "browse-case-grid", "key": "soak"}
    return {"output": output,
            "outputs": [[{"id": grid, "property": "getRowsResponse"}],
                        {"id": "browse-location", "property": "search"}],
            "inputs": [[{"id": grid, "property": "getRowsRequest",
                         "value": {"startRow": start, "endRow": start + 100,
                                   "sortModel": [{"colId": "reported_at", "sort": "desc"}]}}]],
            "state": [{"id": "browse-location", "property": "search", "value": search}],
            "changedPropIds": [json.dumps(grid, separators=(",", ":"), sort_keys=True) + ".getRowsRequest"]}


def leader_loop(port, username, stats, stop, deadline, max_actions, seed_):
    rng = random.Random(seed_)
    stop.wait(rng.random() * 5)
    s = Session(port, stats)
    grid_output = None
    for _ in range(max_actions):
        if stop.is_set() or time.monotonic() > deadline:
            return
        if grid_output is None:
            if login(s, username):
                status, deps, _ = s.request("GET /_dash-dependencies", "GET", "/_dash-dependencies")
                if status == 200:
                    grid_output = next(d["output"] for d in json.loads(deps)
                                       if d["output"].startswith('..{"key":["ALL"]'))
            if grid_output is None:
                stop.wait(5)
                continue
        search = rng.choice(BROWSE_SEARCHES)
        status, _, _ = s.request("GET /browse", "GET", "/browse" + search)
        if status in (302, 401):  # the session ended: log in again
            grid_output = None
            continue
        s.post_json("browse render", render_body(search))
        s.post_json("browse grid", grid_body(grid_output, search, 0))
        if rng.random() < 0.3:
            s.post_json("browse grid", grid_body(grid_output, search, 100))  # scrolled down
        if rng.random() < 0.1:
            what = rng.choice(["kpis", "cases"])
            q = "?period=today" if what == "cases" else search
            s.request("export csv", "GET", f"/browse/export.csv{q}&what={what}")
        stop.wait(rng.uniform(3, 8))


# --- the store ------------------------------------------------------------------------------
class Store:
    def __init__(self):
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.name = f"cc_soak_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        self.engine = make_engine(self.url)
        self.cut_active = False

    def cut(self):
        """No new connection to the soak database, every open one ended (the server stays up)."""
        self.cut_active = True
        with self.admin.connect() as conn:
            conn.execute(text(f'REVOKE CONNECT ON DATABASE "{self.name}" FROM PUBLIC'))
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
            return conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": self.name}).scalar()

    def restore(self):
        with self.admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'GRANT CONNECT ON DATABASE "{self.name}" TO PUBLIC'))
        self.cut_active = False

    def drop(self):
        self.engine.dispose()
        if self.cut_active:
            self.restore()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()

    def lease_holder(self) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT token, holder FROM kpi_owner WHERE id = 1")).first()
        return (row[0], row[1]) if row else None

    def truth(self, at: dt.datetime, since: dt.datetime | None = None) -> dict:
        """Open cases now, reported on `at`'s local day, running and past their deadline at
        `at`; with `since`, the cases changed / reported after it (what a snapshot read
        before `since` cannot have seen)."""
        day = at.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        now = "NOT voided AND closed_at IS NULL"  # the stage now (datasource/stages.py)
        q = (f"SELECT (SELECT count(*) FROM cases WHERE status IN ({OPEN_SQL}) AND {now}),"
             f" (SELECT count(*) FROM cases WHERE reported_at >= :d0 AND reported_at < :d1),"
             f" (SELECT count(*) FROM cases WHERE status IN ({RUNNING_SQL}) AND {now} AND deadline_at < :at),"
             f" (SELECT count(*) FROM cases WHERE updated_at > :since),"
             f" (SELECT count(*) FROM cases WHERE reported_at > :since)")
        with self.engine.connect() as conn:
            r = conn.execute(text(q), {"d0": day, "d1": day + dt.timedelta(days=1), "at": at,
                                       "since": since or at}).one()
        return {"open_cases": r[0], "reported_today": r[1], "overdue": r[2], "changed_since": r[3],
                "reported_since": r[4]}

    def sim_rows(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM cases WHERE external_id LIKE :p"),
                                {"p": SIM_PREFIX}).scalar()


# --- the monitor: readiness, freshness and the walls' figures against SQL --------------------
class Monitor(threading.Thread):
    def __init__(self, hosts: dict[str, int], token: str, store: Store, stats: Stats, stop: threading.Event):
        super().__init__(daemon=True)
        self.hosts, self.store, self.stop = hosts, store, stop
        self.walls = {h: Wall(p, token, stats, endpoint="monitor wall refresh") for h, p in hosts.items()}
        self.ready = {h: Session(p, stats) for h, p in hosts.items()}
        self.samples: list[dict] = []
        self.lock = threading.Lock()

    def sample(self, host: str) -> dict:
        ready, body, _ = self.ready[host].request("readyz", "GET", "/readyz")
        w = self.walls[host]
        w.refresh()
        row = {"t": now_s(), "host": host, "ready": ready, "status": None, "computed": None, "correct": None,
               "why": None}
        if ready != 200:
            try:
                checks = json.loads(body)["checks"]
                row["why"] = "; ".join(f"{k}: {v}" for k, v in sorted(checks.items()) if v != "ok")
            except (ValueError, KeyError, TypeError):
                row["why"] = f"status {ready}"
        if w.head:
            row["status"] = w.head.get("s")
            row["computed"] = w.head.get("c")
            as_of = w.head.get("a")
            if as_of and w.cards and not self.store.cut_active:
                # a case written after the snapshot's read may move each figure by one
                since = dt.datetime.fromtimestamp(as_of / 1000 - 5, dt.timezone.utc)
                try:
                    tr = self.store.truth(dt.datetime.now(dt.timezone.utc), since)
                    row["correct"] = (abs(num(w.cards.get("open_cases")) - tr["open_cases"]) <= tr["changed_since"]
                                      and abs(num(w.cards.get("reported_today")) - tr["reported_today"])
                                      <= tr["reported_since"])
                except Exception:  # noqa: BLE001 - the store is cut or a connection was ended
                    row["correct"] = None
        return row

    def run(self):
        while not self.stop.wait(1.0):
            for h in self.hosts:
                r = self.sample(h)
                with self.lock:
                    self.samples.append(r)

    def recovered_at(self, after: float) -> tuple[float | None, dict]:
        """The first time from which every host is ready, fresh, serving a snapshot computed
        after `after` with figures that agree with SQL; and per host, the seconds it was
        not ready / not fresh between `after` and then."""
        with self.lock:
            rows = [r for r in self.samples if r["t"] >= after]
        after_ms = (time.time() - (now_s() - after)) * 1000  # `after` on the wall clock
        first = {}
        for r in rows:
            if r["host"] in first:
                continue
            if r["ready"] == 200 and r["status"] == "fresh" and r["correct"] and \
                    (r["computed"] or 0) > after_ms:
                first[r["host"]] = r["t"]
        if len(first) < len(self.hosts):
            return None, {}
        return max(first.values()), {}

    def bad_seconds(self, start: float, end: float) -> dict:
        with self.lock:
            rows = [r for r in self.samples if start <= r["t"] <= end]
        out = {}
        for h in self.hosts:
            mine = [r for r in rows if r["host"] == h]
            out[h] = {"not ready": sum(1 for r in mine if r["ready"] != 200),
                      "not fresh": sum(1 for r in mine if r["status"] != "fresh"),
                      "samples": len(mine),
                      "why": Counter(re.sub(r"\d+ s old", "N s old", r["why"]) for r in mine if r["why"])}
        return out


# --- the run -------------------------------------------------------------------------------
def start_redis(port: int, folder: Path, log_dir: Path) -> Proc:
    return Proc("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes"],
                dict(os.environ), log_dir)


def wait_ready(ports: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for p in list(pending):
            try:
                c = http.client.HTTPConnection("127.0.0.1", p, timeout=3)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    pending.discard(p)
                c.close()
            except OSError:
                pass
        time.sleep(1)
    return not pending


def report_requests(stats: Stats, windows: list[tuple[float, float]]) -> list[str]:
    lines = ["", "## Requests (endpoint: count, errors by status, p50 / p95 / max)"]
    by_ep = defaultdict(list)
    for row in stats.rows:
        by_ep[row[1]].append(row)
    for ep in sorted(by_ep):
        rows = by_ep[ep]
        ok = [r[3] for r in rows if r[2] in ("200", "302")]
        calm = [r[3] for r in rows if r[2] in ("200", "302") and not any(a <= r[0] <= b for a, b in windows)]
        errs = Counter(r[2] for r in rows if r[2] not in ("200", "302"))
        in_fault = Counter(r[2] for r in rows if r[2] not in ("200", "302") and any(a <= r[0] <= b for a, b in windows))
        err_txt = ", ".join(f"{k} x{v}" for k, v in sorted(errs.items())) or "none"
        fault_txt = f" ({sum(in_fault.values())} during faults)" if errs else ""
        lines.append(f"- {ep}: {len(rows)} requests; errors: {err_txt}{fault_txt}; "
                     f"p50 {pct(ok, 50) * 1000:.0f} ms, p95 {pct(ok, 95) * 1000:.0f} ms, max {max(ok or [0]) * 1000:.0f} ms; "
                     f"p95 outside faults {pct(calm, 95) * 1000:.0f} ms")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--walls", type=int, default=100)
    ap.add_argument("--leaders", type=int, default=20)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--refresh", type=float, default=5.0, help="PAGE_REFRESH_SECONDS")
    ap.add_argument("--poll", type=float, default=5.0, help="POLL_SECONDS")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    ap.add_argument("--rate", type=float, default=2.0, help="the simulator's new cases a second")
    ap.add_argument("--cut-seconds", type=float, default=30.0)
    ap.add_argument("--redis-down-seconds", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    args = ap.parse_args()
    run_s = args.minutes * 60
    # faults at fixed shares of the run, each given time to recover before the next
    faults_at = {"store cut": 0.2 * run_s, "redis killed": 0.45 * run_s, "leader killed": 0.7 * run_s}
    cut_s = min(args.cut_seconds, 0.1 * run_s)
    redis_down_s = min(args.redis_down_seconds, 0.07 * run_s)

    work = Path(tempfile.mkdtemp(prefix="cc-soak-"))
    logs = work / "logs"
    logs.mkdir()
    say(f"work folder {work}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    store = Store()
    procs: list[Proc] = []
    sup = None
    stop = threading.Event()
    failed = False
    lines: list[str] = []
    try:
        upgrade(store.engine)
        t = time.perf_counter()
        seed(store.engine, total_cases=args.cases, now=dt.datetime.now(dt.timezone.utc), events=True,
             occupancy_days=2)
        say(f"store {store.name}: {args.cases:,} cases seeded in {time.perf_counter() - t:.0f} s")
        leaders = []
        with store.engine.connect() as conn:
            districts = [r[0] for r in conn.execute(text("SELECT code FROM districts ORDER BY sort_order"))]
        for i in range(args.leaders):
            name = f"leader{i:02d}"
            role, district = ("city_leader", None) if i % 2 == 0 else ("district_leader", districts[i % len(districts)])
            users.create_user(store.engine, name, hash_password(PASSWORD, name), role, district)
            leaders.append(name)
        _id, token = new_display_token(store.engine, "soak walls")

        redis_port = free_port()
        redis = start_redis(redis_port, work, logs)
        procs.append(redis)
        prefix = f"soak-{uuid.uuid4().hex[:8]}"
        secret = secrets.token_hex(32)
        hosts = {"a": free_port(), "b": free_port()}
        base_env = {**os.environ, "DATABASE_URL": store.url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                    "CACHE_PREFIX": prefix, "SECRET_KEY": secret, "DASHBOARD_ENV": "production",
                    "AUTH_ENABLED": "true", "POLLER_ENABLED": "false", "POLL_SECONDS": str(args.poll),
                    "PAGE_REFRESH_SECONDS": str(args.refresh), "DASHBOARD_WORKERS": str(args.workers),
                    "DASHBOARD_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "ACCESS_LOG": "false",
                    # every leader logs in from 127.0.0.1: a per-address limit meant for one person
                    "LOGIN_RATE_LIMIT": "300 per minute", "SIMULATOR_RATE": str(args.rate)}
        for h, port in hosts.items():
            env = {**base_env, "DASHBOARD_PORT": str(port), "LOCAL_CACHE_DIR": str(work / f"host-{h}" / "cache"),
                   "REPORTS_DIR": str(work / f"host-{h}" / "reports")}
            procs.append(Proc(f"web-{h}", [sys.executable, "-m", "dashboard", "serve"], env, logs))
            procs.append(Proc(f"poller-{h}", [sys.executable, "-m", "dashboard", "poll"], env, logs))
        sim_state = work / "simulator.json"
        sim = Proc("simulator", [sys.executable, str(Path(__file__).parent / "_soak_sim.py"), str(sim_state)],
                   base_env, logs)
        procs.append(sim)
        sup = Supervisor(procs)
        sup.start()
        if not wait_ready(list(hosts.values()), 180):
            raise RuntimeError(f"the hosts did not become ready; see {logs}")
        say(f"hosts ready: a :{hosts['a']}, b :{hosts['b']} (gunicorn {args.workers} workers each, own pollers), "
            f"redis :{redis_port}, simulator {args.rate:g} cases/s")
        time.sleep(3)
        mem_start = memory(procs)

        stats = Stats()
        mon = Monitor(hosts, token, store, stats, stop)
        mon.start()
        deadline = time.monotonic() + run_s
        ports = list(hosts.values())
        threads = [threading.Thread(target=wall_loop, daemon=True,
                                    args=(ports[i % 2], token, stats, stop, args.refresh, deadline,
                                          int(run_s / args.refresh) + 2)) for i in range(args.walls)]
        threads += [threading.Thread(target=leader_loop, daemon=True,
                                     args=(ports[i % 2], name, stats, stop, deadline, int(run_s / 3) + 2, i))
                    for i, name in enumerate(leaders)]
        for th in threads:
            th.start()
        say(f"load: {args.walls} walls (refresh {args.refresh:g} s), {args.leaders} leaders browsing, "
            f"for {args.minutes:g} min")

        faults = []  # (name, start, end, detail)
        schedule = sorted(faults_at.items(), key=lambda kv: kv[1])
        start_run = now_s()
        for name, at in schedule:
            stop.wait(max(0.0, start_run + at - now_s()))
            t_start = now_s()
            if name == "store cut":
                ended = store.cut()
                say(f"FAULT store cut: connections refused, {ended} backends terminated; {cut_s:g} s")
                end = time.monotonic() + cut_s
                while time.monotonic() < end:  # nothing can connect; keep it so
                    time.sleep(1)
                store.restore()
                faults.append((name, t_start, now_s(), f"{cut_s:g} s, {ended} backends terminated"))
            elif name == "redis killed":
                redis.held = True
                os.kill(redis.pid, signal.SIGKILL)
                say(f"FAULT redis killed (pid {redis.pid}); down {redis_down_s:g} s")
                time.sleep(redis_down_s)
                redis.held = False  # the supervisor starts it again (empty: nothing persisted)
                while redis.popen.poll() is not None:
                    time.sleep(0.1)
                faults.append((name, t_start, now_s(), f"down {redis_down_s:g} s, restarted empty"))
            else:
                token_before, holder = store.lease_holder()
                pid = int(holder.split(":")[1])
                victim = next((p for p in procs if p.pid == pid), None)
                if victim is None:
                    raise RuntimeError(f"the lease holder {holder} is not one of the soak's processes")
                os.kill(pid, signal.SIGKILL)
                say(f"FAULT leader killed: {victim.name} pid {pid} (lease token {token_before})")
                took_over = None
                for _ in range(120):
                    time.sleep(0.5)
                    try:
                        tok, hold = store.lease_holder()
                    except Exception:  # noqa: BLE001
                        continue
                    if tok != token_before:
                        took_over = (now_s() - t_start, hold)
                        break
                detail = (f"{victim.name} killed; lease taken by pid {took_over[1].split(':')[1]} "
                          f"{took_over[0]:.1f} s later" if took_over else f"{victim.name} killed; lease not taken in 60 s")
                faults.append((name, t_start, now_s() if took_over is None else t_start, detail))
        stop.wait(max(0.0, deadline - time.monotonic()))
        stop.set()
        for th in threads:
            th.join(timeout=40)
        say("load stopped")
        time.sleep(1)
        mem_end = memory(procs)

        # --- rows lost: the simulator stops, its count against the store ---
        sim.held = True
        sim.popen.send_signal(signal.SIGTERM)
        sim.popen.wait(timeout=30)
        t_sim_stop = time.time()
        counted = json.loads(sim_state.read_text())
        in_store = store.sim_rows()

        # --- one more poll, then the walls' figures against SQL at the snapshot's time ---
        final = {}
        deadline2 = time.monotonic() + 90
        while time.monotonic() < deadline2 and len(final) < len(hosts):
            for h, port in hosts.items():
                w = Wall(port, token, stats, endpoint="final wall read")
                w.refresh()
                if w.head and w.head.get("s") == "fresh" and (w.head.get("c") or 0) / 1000 > t_sim_stop + 0.5:
                    final[h] = w
            time.sleep(1)
        import redis as redis_lib

        from dashboard.snapshot import Snapshot

        r = redis_lib.Redis(port=redis_port)
        snap = Snapshot.from_json(r.get(f"{prefix}:snapshot"))
        r.close()
        c = snap.sections["cases"].data
        published = {"open_cases": c["open"]["total"], "reported_today": c["periods_kpis"]["today"]["city"]["reported"]["value"],
                     "overdue": c["overdue"]["total"]}
        truth = store.truth(snap.computed_at)

        # --- the report ---
        lines += ["", f"# Soak: {args.minutes:g} min, {args.walls} walls, {args.leaders} leaders, two hosts, "
                      f"{args.cases:,} cases, simulator {args.rate:g} cases/s",
                  f"machine: {os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.2f} "
                  f"(shared: other people's tests may run)"]
        windows = [(a, mon.recovered_at(b)[0] or b + 60) for (_n, a, b, _d) in faults]
        lines += report_requests(stats, windows)
        lines += ["", "## Faults (recovery: every host ready, wall fresh on a snapshot computed after the fault "
                      "ended, open cases and reported today agreeing with SQL)"]
        for (name, a, b, detail) in faults:
            rec, _ = mon.recovered_at(b)
            bad = mon.bad_seconds(a, rec if rec else b + 60)
            bad_txt = "; ".join(f"host {h}: not ready {v['not ready']} s, not fresh {v['not fresh']} s of "
                                f"{v['samples']} s" for h, v in bad.items())
            rec_txt = f"recovered {rec - b:.1f} s after the fault ended" if rec else "NOT recovered"
            failed |= rec is None
            lines.append(f"- {name} at {a - start_run:.0f} s ({detail}): {rec_txt}; {bad_txt}")
            for h, v in bad.items():
                for why, n in v["why"].most_common(3):
                    lines.append(f"  - host {h} /readyz 503 x{n}: {why}")
        restarts = [(p.name, t - start_run, code) for p in procs for t, code in p.restarts]
        lines.append("- restarts by the supervisor: " + (", ".join(f"{n} at {t:.0f} s (exit {c})"
                                                                   for n, t, c in restarts) or "none"))
        lines += ["", "## Rows (the simulator's committed new cases vs the store)",
                  f"- simulator: {counted['ticks']} ticks committed, {counted['failed_ticks']} failed "
                  f"(last error: {counted['last_error']}); {counted['reported']} new cases, "
                  f"{counted['moved']} moves, {counted['visits']} visits, {counted['readings']} readings",
                  f"- in the store: {in_store} simulator cases; lost: {max(0, counted['reported'] - in_store)}, "
                  f"extra (a commit the client saw fail): {max(0, in_store - counted['reported'])}"]
        failed |= in_store < counted["reported"]
        lines += ["", f"## Final figures (simulator stopped, one more poll; snapshot computed "
                      f"{snap.computed_at.astimezone(TZ):%H:%M:%S} {snap.version[:12]})",
                  f"{'figure':16s} {'SQL':>8s} {'published':>10s} " + " ".join(f"{'wall ' + h:>8s}" for h in hosts)]
        for k in ("open_cases", "reported_today", "overdue"):
            walls_v = [final[h].cards.get(k) if h in final else None for h in hosts]
            same = published[k] == truth[k] and all(num(v) == truth[k] for v in walls_v)
            failed |= not same
            lines.append(f"{k:16s} {truth[k]:8d} {published[k]:10d} " + " ".join(f"{str(v):>8s}" for v in walls_v)
                         + ("   equal" if same else "   DIFFERENT"))
        versions = {h: (w.display.shown or {}).get("k", "").split("|")[0][:12] for h, w in final.items()}
        lines.append(f"walls' snapshot versions: {versions}")
        lines += ["", "## Memory (RSS, MiB) at the start of the load and at its end"]
        for k in sorted(set(mem_start) | set(mem_end)):
            a, b = mem_start.get(k), mem_end.get(k)
            lines.append(f"- {k}: {a / 1024 if a else float('nan'):.0f} -> {b / 1024 if b else float('nan'):.0f}"
                         + ("" if a and b else " (not running at one of the two moments)"))
        log_errors = {}
        for f in sorted(logs.iterdir()):
            text_ = f.read_text(errors="replace")
            log_errors[f.stem] = (text_.count(" ERROR "), text_.count("Traceback"))
        lines.append("")
        lines.append("log lines: " + ", ".join(f"{k} {e} ERROR / {tb} tracebacks" for k, (e, tb) in log_errors.items()))
        print("\n".join(lines), flush=True)
        (work / "report.md").write_text("\n".join(lines))
    finally:
        stop.set()
        if sup:
            sup.stopping.set()
            sup.join(timeout=5)
        for p in reversed(procs):
            p.stop()
        store.drop()
        if args.keep or failed:
            print(f"logs kept in {logs}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
