"""Poll cost at 100k / 1M / 10M cases, store statements per interval, snapshot reads, and
the naive pattern (every viewer runs the panel queries itself) for comparison.

    python bench/bench_poll.py --scales 100k,1M --backends postgresql,sqlite

Stores are kept between runs (PostgreSQL database cc_poll_<scale>, SQLite file
var/bench/poll_<scale>.db) because seeding 10M cases takes minutes; --fresh re-seeds.
Before each poll the live simulator writes one interval's worth (5 s) of reports, their
lifecycle moves and visits (parking readings once a minute), so every poll has something to
read; the moves are capped (--moves-per-second) so that every store gets the same writes,
whatever its size (the poll should cost what changed, not the history). Then a few polls
run with nothing written in between. Polls run back to back by default, or one
every --interval seconds as the scheduler runs them (the poller then saves its state
every sixth poll or so, and re-reads a 30 s overlap of six polls' writes, as it would in
production). The machine's load average is printed with each figure (--quiet-load waits
for a quieter machine first). Polls vary by a third from one run to the next on a small
shared machine, so --interleave ends with the kept stores of every scale polled in turn
in one run, for a ratio between scales that the machine's drift affects alike.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench._stores import PG_ADMIN_URL  # noqa: E402
from dashboard.cache import Cache  # noqa: E402
from dashboard.cli import _scale  # noqa: E402
from dashboard.kpis.sections import SECTIONS, make_sections  # noqa: E402
from dashboard.leader import Election, FileLock  # noqa: E402
from dashboard.poller import Poller  # noqa: E402
from dashboard.settings import PROJECT_ROOT, Settings  # noqa: E402
from datasource.demo.seed import seed, store_is_empty  # noqa: E402
from datasource.demo.simulate import Simulator  # noqa: E402
from datasource.engine import make_engine  # noqa: E402
from datasource.migrate import upgrade  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))


class Counter:
    """Store statements and their time, for every engine in this process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statements = 0
        self.seconds = 0.0
        self._start = threading.local()
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, *args):
        self._start.t = time.perf_counter()

    def _after(self, *args):
        with self.lock:
            self.statements += 1
            self.seconds += time.perf_counter() - getattr(self._start, "t", time.perf_counter())

    def take(self) -> tuple[int, float]:
        with self.lock:
            out = (self.statements, self.seconds)
            self.statements, self.seconds = 0, 0.0
        return out


def store_url(backend: str, raw: str, fresh: bool) -> str:
    name = f"poll_{raw.lower()}"
    if backend == "sqlite":
        path = PROJECT_ROOT / "var" / "bench" / f"{name}.db"
        if fresh and path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"cc_{name}"}).first()
        if exists and fresh:
            conn.execute(text(f'DROP DATABASE "cc_{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "cc_{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/cc_{name}"


def p90(xs: list[float]) -> float:
    return sorted(xs)[int(0.9 * (len(xs) - 1))]


def ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"


def wait_for_quiet(threshold: float | None, limit: float = 900.0) -> None:
    """Wait (at most `limit` seconds) until the 1-minute load average is under `threshold`."""
    deadline = time.monotonic() + limit
    while threshold and os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        time.sleep(10)


def setup(backend: str, raw: str, fresh: bool, moves: float | None):
    """(url, engine, settings, cache, poller, simulator) for one kept store, seeded if empty."""
    n = _scale(raw)
    url = store_url(backend, raw, fresh)
    engine = make_engine(url)
    upgrade(engine)
    if store_is_empty(engine):
        print(f"  seeding {n:,} cases into {backend}...", flush=True)
        seed(engine, total_cases=n, occupancy_days=2)
    folder = Path(tempfile.mkdtemp(prefix="cc-bench-poll-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "CACHE_PREFIX": prefix,
                                  "LOCAL_CACHE_DIR": str(folder), "LOG_LEVEL": "WARNING"}, environ={})
    cache = Cache.from_settings(settings)
    poller = Poller(settings, engine=engine, cache=cache, sections=make_sections,
                    election=Election(FileLock(folder / "lock")))
    sim = Simulator(engine, rate=2.0, seed=1, moves_per_second=moves)
    return url, engine, settings, cache, poller, sim


def interleaved(backend: str, scales: list[str], polls: int, interval: float, moves: float | None) -> dict:
    """Polls of every scale taken in turn, each store's every `interval` seconds, so that
    whatever else the machine does in the meantime falls on all of them alike: the ratio
    between scales is then steadier than across separate runs."""
    stores = {raw: setup(backend, raw, False, moves) for raw in scales}
    for raw, (*_, poller, _sim) in stores.items():
        poller.poll_once()  # loads the state
    durations = {raw: [] for raw in scales}
    slot = interval / len(scales)
    t0 = time.monotonic()
    for i in range(polls):
        for j, (raw, (_u, _e, _s, _c, poller, sim)) in enumerate(stores.items()):
            time.sleep(max(0.0, t0 + i * interval + j * slot - time.monotonic()))
            sim.tick(dt.datetime.now(dt.timezone.utc), interval)
            start = time.perf_counter()
            poller.poll_once()
            durations[raw].append(time.perf_counter() - start)
    for _u, engine, _s, _c, poller, _sim in stores.values():
        poller.stop(wait=True)
        engine.dispose()
    return {raw: (statistics.median(d), p90(d)) for raw, d in durations.items()}


def bench_one(backend: str, raw: str, polls: int, fresh: bool, counter: Counter, naive: bool = True,
              quiet_polls: int = 0, quiet_load: float | None = None, interval: float = 0.0,
              moves: float | None = None) -> dict:
    n = _scale(raw)
    url, engine, settings, cache, poller, sim = setup(backend, raw, fresh, moves)
    tz = settings.tz

    counter.take()
    t0 = time.perf_counter()
    poller.poll_once()
    first = time.perf_counter() - t0
    wait_for_quiet(quiet_load)
    load_before = os.getloadavg()[0]
    durations, statements, written = [], [], []
    for i in range(polls):
        if interval and i:  # a poll every `interval` seconds, as the scheduler runs them
            time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
        tick = sim.tick(dt.datetime.now(dt.timezone.utc), 5.0)  # one interval's worth of writes
        written.append((tick.reported, tick.moved))
        counter.take()
        t0 = time.perf_counter()
        snap = poller.poll_once()
        durations.append(time.perf_counter() - t0)
        statements.append(counter.take()[0])
    quiet = []  # the same polls with nothing written in between
    for _ in range(quiet_polls):
        t0 = time.perf_counter()
        poller.poll_once()
        quiet.append(time.perf_counter() - t0)
    load = (load_before, os.getloadavg()[0])
    bad = {k: s.status for k, s in snap.sections.items() if s.status != "fresh"}
    if bad:
        print(f"  WARNING: sections not fresh: {bad}")

    # viewers: each refresh asks the cache whether the version changed; no store access
    version = snap.version
    viewer_statements = {}  # viewers -> (the poll's statements, the viewers' statements)
    for viewers in (1, 10, 100):
        sim.tick(dt.datetime.now(dt.timezone.utc), 5.0)
        counter.take()
        poller.poll_once()
        polled = counter.take()[0]
        for _ in range(viewers):
            cache.get_if_changed(version)
        viewer_statements[viewers] = (polled, counter.take()[0])
    version = cache.current_version()
    reads_unchanged = []
    for _ in range(300):
        t0 = time.perf_counter()
        assert cache.get_if_changed(version) is None
        reads_unchanged.append(time.perf_counter() - t0)
    reads_changed = []
    for _ in range(30):
        cache._memo = None  # noqa: SLF001  a reader that has not parsed this version yet
        t0 = time.perf_counter()
        assert cache.get_if_changed("not-this-version") is not None
        reads_changed.append(time.perf_counter() - t0)

    # the naive pattern: one viewer's refresh runs every panel's queries itself
    naive_one, naive_statements, naive_db, concurrent = 0.0, 0, 0.0, None
    if naive:
        naive_one, naive_statements, naive_db, concurrent = bench_naive(engine, url, n, tz, counter)
    poller.stop(wait=True)
    engine.dispose()
    return {"backend": backend, "scale": raw, "cases": n, "first_poll": first,
            "median_poll": statistics.median(durations), "p90_poll": p90(durations),
            "median_quiet": statistics.median(quiet) if quiet else None, "p90_quiet": p90(quiet) if quiet else None,
            "load": load, "written": tuple(statistics.median(w) for w in zip(*written)),
            "statements_per_poll": statistics.median(statements), "statements_range": (min(statements), max(statements)), "viewer_statements": viewer_statements,
            "read_unchanged": statistics.median(reads_unchanged), "read_changed": statistics.median(reads_changed),
            "naive_one_refresh": naive_one, "naive_statements": naive_statements, "naive_db": naive_db,
            "naive_concurrent": concurrent}


def bench_naive(engine, url: str, n: int, tz, counter: Counter) -> tuple:
    """One viewer's refresh running every panel query (and, at 100k, 50 at once)."""
    counter.take()
    t0 = time.perf_counter()
    for fn in SECTIONS.values():
        fn(engine, dt.datetime.now(dt.timezone.utc), tz)
    naive_one = time.perf_counter() - t0
    naive_statements, naive_db = counter.take()
    concurrent = None
    if n <= 100_000:  # 50 real viewers at once: affordable at the small scale only
        viewers = make_engine(url, pool_size=50, max_overflow=0)

        def refresh():
            for fn in SECTIONS.values():
                fn(viewers, dt.datetime.now(dt.timezone.utc), tz)

        threads = [threading.Thread(target=refresh) for _ in range(50)]
        counter.take()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        c_statements, c_db = counter.take()
        concurrent = {"statements": c_statements, "db": c_db, "wall": wall}
        viewers.dispose()
    return naive_one, naive_statements, naive_db, concurrent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", default="100k,1M")
    ap.add_argument("--backends", default="postgresql,sqlite")
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--quiet-polls", type=int, default=10, help="polls with nothing written in between")
    ap.add_argument("--interval", type=float, default=0.0,
                    help="seconds from one poll's start to the next (5 = the default POLL_SECONDS); "
                         "0 polls back to back, each after 5 s worth of writes")
    ap.add_argument("--quiet-load", type=float, default=None,
                    help="before polling, wait (up to 15 min) for the 1-minute load average to fall under this")
    ap.add_argument("--fresh", action="store_true", help="re-seed the kept stores")
    ap.add_argument("--viewers", type=int, default=50, help="viewers in the naive comparison")
    ap.add_argument("--moves-per-second", type=float, default=4.0,
                    help="lifecycle moves the simulator writes a second, the same at every scale "
                         "(0: as many as the store's recent open cases give, which grows with the store)")
    ap.add_argument("--interleave", action="store_true",
                    help="after the per-store runs, poll the kept stores of every scale in turn (one "
                         "backend at a time) and print the ratios of that run")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive comparison (minutes at 10M)")
    args = ap.parse_args(argv)
    counter = Counter()
    results = []
    for backend in args.backends.split(","):
        for raw in args.scales.split(","):
            if backend == "sqlite" and _scale(raw) > 1_000_000:
                continue  # SQLite is the embedded demo store: benchmarked up to 1M
            print(f"\n== {backend} {raw}", flush=True)
            r = bench_one(backend, raw, args.polls, args.fresh, counter, naive=not args.no_naive,
                          quiet_polls=args.quiet_polls, quiet_load=args.quiet_load, interval=args.interval,
                          moves=args.moves_per_second or None)
            results.append(r)
            print(f"  first poll (loads the state; rebuilds it when missing) {ms(r['first_poll'])}")
            print(f"  poll median {ms(r['median_poll'])}, p90 {ms(r['p90_poll'])}, "
                  f"{r['statements_per_poll']:.0f} store statements per poll ({r['statements_range'][0]}-"
                  f"{r['statements_range'][1]}) "
                  f"(load average {r['load'][0]:.1f} before, {r['load'][1]:.1f} after)")
            print(f"  written before each poll (median): {r['written'][0]:.0f} new cases, "
                  f"{r['written'][1]:.0f} lifecycle moves")
            if r["median_quiet"] is not None:
                print(f"  with nothing written between polls: median {ms(r['median_quiet'])}, p90 {ms(r['p90_quiet'])}")
            vs = r["viewer_statements"]
            print(f"  store statements in one interval with 1/10/100 viewers: "
                  f"{' / '.join(str(sum(vs[v])) for v in (1, 10, 100))} "
                  f"(the poll's: {' / '.join(str(vs[v][0]) for v in (1, 10, 100))}, "
                  f"the viewers': {' / '.join(str(vs[v][1]) for v in (1, 10, 100))})")
            print(f"  snapshot read: unchanged {r['read_unchanged'] * 1e6:.0f} us, changed {ms(r['read_changed'])}")
            naive_interval = r["naive_db"] * args.viewers
            if not args.no_naive:
                print(f"  naive: one refresh runs {r['naive_statements']} statements, {ms(r['naive_db'])} in the store; "
                      f"x{args.viewers} viewers = {naive_interval:.2f} s of store time per interval "
                      f"vs {r['median_poll']:.3f} s for one poll ({naive_interval / max(r['median_poll'], 1e-9):,.0f}x)")
            c = r.get("naive_concurrent")
            if c:
                print(f"  naive, 50 viewers refreshing at once: {c['statements']} statements, "
                      f"{c['db']:.2f} s of store time, {c['wall']:.2f} s wall")
    print("\n== summary")
    print(f"{'backend':<11}{'scale':>6}{'median poll':>14}{'stmts/poll':>12}{'naive x' + str(args.viewers):>16}")
    for r in results:
        print(f"{r['backend']:<11}{r['scale']:>6}{ms(r['median_poll']):>14}{r['statements_per_poll']:>12.0f}"
              f"{r['naive_db'] * args.viewers:>14.2f} s")
    for backend in {r["backend"] for r in results}:
        rs = {r["scale"].lower(): r for r in results if r["backend"] == backend}
        small = rs.get("100k")
        for big in ("1m", "10m"):
            if small and big in rs:
                print(f"{backend}: median poll {big.upper()}/100k = {rs[big]['median_poll'] / small['median_poll']:.2f}")
    if args.interleave:
        for backend in args.backends.split(","):
            scales = [raw for raw in args.scales.split(",") if backend != "sqlite" or _scale(raw) <= 1_000_000]
            print(f"\n== {backend}, scales polled in turn ({args.polls} polls each, every "
                  f"{args.interval or 5:g} s)", flush=True)
            r = interleaved(backend, scales, args.polls, args.interval or 5.0, args.moves_per_second or None)
            for raw, (median, high) in r.items():
                print(f"  {raw:>5}: median {ms(median)}, p90 {ms(high)}, ratio to {scales[0]} "
                      f"{median / r[scales[0]][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
