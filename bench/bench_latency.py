"""From a case committed to the store to the case on every open wall: p50 and p95 with
1, 10 and 100 displays, the server's CPU per display, and the store's transactions per
second (which must not grow with the displays).

    python bench/bench_latency.py --displays 1,10,100 --seconds 40

gunicorn (2 workers x 8 threads, its elected poller inside) with the shipped defaults
(POLL_SECONDS, CHANGE_CHECK_SECONDS, PAGE_REFRESH_SECONDS), no simulator: the only
writer is this script, which commits a case every 2-4 s. Each display posts the wall's
refresh as dash-renderer does; a display "has" a case at the first answer whose
snapshot was computed after the commit returned (a poll that starts then reads it).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from tests.wall_helpers import WallDisplay  # noqa: E402
from bench._stores import fresh_store  # noqa: E402
from bench.bench_wall import Deployment, _add_case, http_transport, ms, pct  # noqa: E402
from dashboard.accounts import new_display_token  # noqa: E402
from dashboard.settings import Settings  # noqa: E402
from datasource.demo.seed import seed  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that are still alive (gunicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            pids += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def _store_transactions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                 "WHERE datname = current_database()")).scalar_one()


def run(engine, url: str, token: str, displays: int, seconds: float, refresh: float, poll: float) -> dict:
    dep = Deployment(url, f"bench-lat-{uuid.uuid4().hex[:8]}", workers=2, poll=poll, refresh=refresh,
                     simulate=False)
    seen: list[list[tuple[float, float]]] = [[] for _ in range(displays)]  # (received, computed_at)
    errors: list = []
    stop = threading.Event()

    def display(i: int) -> None:
        d = WallDisplay(http_transport(dep.port, token))
        time.sleep(random.random() * refresh)  # switched on at different moments
        nxt = time.monotonic()
        while not stop.is_set():
            try:
                status, _raw, sent = d.refresh()
            except Exception as exc:  # noqa: BLE001 - a failed refresh is a figure
                errors.append(repr(exc))
                d = WallDisplay(http_transport(dep.port, token))
                continue
            got = time.time()
            if status != 200:
                errors.append(status)
            elif "wall-head" in sent and sent["wall-head"]["data"]:
                seen[i].append((got, sent["wall-head"]["data"]["c"] / 1000))
            nxt += refresh
            time.sleep(max(0.0, nxt - time.monotonic()))

    threads = [threading.Thread(target=display, args=(i,), daemon=True) for i in range(displays)]
    try:
        for t in threads:
            t.start()
        time.sleep(3 + refresh)  # every display has its first answer
        cpu0, tx0, t0 = _cpu_seconds(dep.procs[0].pid), _store_transactions(engine), time.monotonic()
        commits = []
        while time.monotonic() - t0 < seconds:
            time.sleep(random.uniform(2, 4))
            _add_case(engine, len(commits))
            commits.append(time.time())
        time.sleep(poll + 2 * refresh + 1)  # the last write reaches every display
        elapsed = time.monotonic() - t0
        cpu, tx = _cpu_seconds(dep.procs[0].pid) - cpu0, _store_transactions(engine) - tx0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        dep.stop()
    lags, missed = [], 0
    for committed in commits:
        for answers in seen:
            first = next((got for got, computed in answers if computed >= committed), None)
            if first is None:
                missed += 1
            else:
                lags.append(first - committed)
    return {"lags": lags, "missed": missed, "commits": len(commits), "errors": errors,
            "cpu_per_display": cpu / elapsed / displays, "cpu": cpu / elapsed,
            "tx_per_s": tx / elapsed, "refreshes": sum(len(a) for a in seen)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--displays", default="1,10,100")
    ap.add_argument("--seconds", type=float, default=40)
    args = ap.parse_args()
    defaults = Settings.from_env({})
    poll, refresh = defaults["POLL_SECONDS"], defaults["PAGE_REFRESH_SECONDS"]
    print(f"defaults: POLL_SECONDS {poll:g}, CHANGE_CHECK_SECONDS {defaults['CHANGE_CHECK_SECONDS']:g}, "
          f"PAGE_REFRESH_SECONDS {refresh:g}")
    with fresh_store("postgresql") as engine:
        url = engine.url.render_as_string(hide_password=False)
        seed(engine, seed=20261127, total_cases=args.cases, events=False)
        _id, token = new_display_token(engine, "bench walls")
        print(f"store: PostgreSQL, {args.cases:,} cases\n")
        print("| displays | commits | p50 commit -> wall | p95 | max | missed | errors | server CPU | "
              "CPU per display | store transactions/s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in (int(x) for x in args.displays.split(",")):
            r = run(engine, url, token, n, args.seconds, refresh, poll)
            print(f"| {n} | {r['commits']} | {ms(pct(r['lags'], 50))} | {ms(pct(r['lags'], 95))} | "
                  f"{ms(max(r['lags']))} | {r['missed']} | {len(r['errors'])} | {r['cpu'] * 100:.1f} % of a core | "
                  f"{r['cpu_per_display'] * 1000:.2f} ms/s | {r['tx_per_s']:.1f} |", flush=True)
    print("\ntarget: p95 <= 3 s with 100 displays; store transactions/s the same for 1, 10 and 100")
    return 0


if __name__ == "__main__":
    sys.exit(main())
