"""The wall's refresh cost: server time unchanged vs changed, payload bytes, p95 latency
with many displays under gunicorn while the live simulator writes, time to first full
render in headless Chromium, and (with --soak-minutes) browser memory over a long run.

    python bench/bench_wall.py --displays 50 --seconds 60
    python bench/bench_wall.py --soak-minutes 30        # memory over half an hour

The store is a fresh PostgreSQL database with the demo city (the wall's cost does not
depend on the store's size: it reads the snapshot, never the store).
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from tests.wall_helpers import WallDisplay, flask_transport  # noqa: E402
from bench._stores import fresh_store  # noqa: E402
from dashboard import create_app  # noqa: E402
from dashboard.accounts import new_display_token  # noqa: E402
from dashboard.poller import Poller  # noqa: E402
from dashboard.services import EXTENSION  # noqa: E402
from dashboard.settings import PROJECT_ROOT  # noqa: E402
from datasource import schema  # noqa: E402
from datasource.demo.seed import seed  # noqa: E402

SECRET = "bench-" + uuid.uuid4().hex  # walls sign in with a display token, as in production
REDIS_URL = os.environ.get("BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PANELS_READY = """() => { const graphs = Array.from(document.querySelectorAll('.panel-graph'));
  return document.querySelector('#card-open_cases .card-value[data-value]') !== null &&
    graphs.length > 0 && graphs.every(g => { const gd = g.querySelector('.js-plotly-plot');
      return gd && gd.data && gd.data.length > 0; }); }"""


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def _add_case(engine, n):
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(schema.Case), [dict(
            external_id=f"BENCH-WALL-{uuid.uuid4().hex[:10]}-{n}", source="hotline", category_code="S01-01",
            district_code="410105", status="filed", reported_at=now, filed_at=now, updated_at=now)])


# --- in-process: the callback's own cost ---------------------------------------------
def server_costs(url: str, prefix: str, token: str) -> dict:
    app = create_app({"DATABASE_URL": url, "POLLER_ENABLED": False, "REDIS_URL": REDIS_URL,
                      "CACHE_PREFIX": prefix, "SECRET_KEY": SECRET})
    svc = app.server.extensions[EXTENSION]
    poller = Poller(svc.settings, engine=svc.engine, cache=svc.cache)
    poller.poll_once()
    post = flask_transport(app)
    post.client.get(f"/wall?token={token}")  # the display's session
    primary = WallDisplay(post)
    primary.refresh()
    unchanged, unchanged_bytes = [], []
    for _ in range(400):
        t0 = time.perf_counter()
        _status, raw, _sent = primary.refresh()
        unchanged.append(time.perf_counter() - t0)
        unchanged_bytes.append(len(raw))
    first, others, changed_bytes, outputs_sent = [], [], [], []
    followers = [WallDisplay(post) for _ in range(9)]
    for f in followers:
        f.refresh()
    for i in range(15):
        _add_case(svc.engine, i)
        poller.poll_once()
        t0 = time.perf_counter()
        _status, raw, sent = primary.refresh()  # renders the new version
        first.append(time.perf_counter() - t0)
        changed_bytes.append(len(raw))
        outputs_sent.append(len(sent))
        for f in followers:  # read the rendering from the cache
            t0 = time.perf_counter()
            f.refresh()
            others.append(time.perf_counter() - t0)
    svc.engine.dispose()
    return {"unchanged": unchanged, "unchanged_bytes": unchanged_bytes, "changed_first": first,
            "changed_others": others, "changed_bytes": changed_bytes, "outputs_sent": outputs_sent}


# --- gunicorn, the simulator and many displays ---------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    """gunicorn (its elected poller inside) plus the live simulator, on one store."""

    def __init__(self, url: str, prefix: str, *, workers: int, poll: float, refresh: float,
                 simulate: bool = True, env: dict | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL, "CACHE_PREFIX": prefix,
               "SECRET_KEY": SECRET, "COOKIE_SECURE": "false",
               "POLL_SECONDS": str(poll), "PAGE_REFRESH_SECONDS": str(refresh), "LOG_LEVEL": "WARNING",
               "SIMULATOR_RATE": "2", "SIMULATOR_OCCUPANCY_SECONDS": "20", **(env or {})}
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "gunicorn", "--no-control-socket", "--bind",
                              f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", "8",
                              "--worker-class", "gthread", "app:server"], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        if simulate:
            self.procs.append(subprocess.Popen([sys.executable, "-m", "dashboard", "simulate"], cwd=PROJECT_ROOT,
                                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(self.base + "/readyz", timeout=2).status == 200:
                    return
            except Exception:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("the app did not become ready")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def http_transport(port: int, token: str):
    """A display's connection: signs in with its token once, then posts with the cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/wall?token={token}")
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie", "").split(";")[0]

    def post(body):
        data = json.dumps(body).encode()
        conn.request("POST", "/_dash-update-component", body=data,
                     headers={"Content-Type": "application/json", "Cookie": cookie})
        resp = conn.getresponse()
        return resp.status, resp.read()
    return post


def many_displays(dep: Deployment, displays: int, seconds: float, refresh: float, token: str) -> dict:
    latencies, changed, unchanged_lat, errors, versions = [], [], [], [], set()
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(i):
        d = WallDisplay(http_transport(dep.port, token))
        time.sleep(random.random() * refresh)  # displays were switched on at different moments
        d.refresh()  # the first full load is not a refresh
        nxt = time.monotonic()
        while time.monotonic() < stop:
            nxt += refresh
            time.sleep(max(0.0, nxt - time.monotonic()))
            t0 = time.perf_counter()
            try:
                status, raw, sent = d.refresh()
            except Exception as exc:  # noqa: BLE001 - a failed refresh is a figure
                with lock:
                    errors.append(repr(exc))
                d = WallDisplay(http_transport(dep.port, token))
                continue
            took = time.perf_counter() - t0
            with lock:
                latencies.append(took)
                if status != 200:
                    errors.append(status)
                elif len(sent) > 1:
                    changed.append(took)
                    versions.add(d.shown["k"].split("|")[0] if d.shown else None)
                else:
                    unchanged_lat.append(took)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(displays)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"all": latencies, "changed": changed, "unchanged": unchanged_lat, "errors": errors,
            "versions": len(versions)}


# --- the browser ---------------------------------------------------------------------
def first_render(base: str, token: str, runs: int = 3) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"{base}/wall?token={token}")
            page.wait_for_function(PANELS_READY, timeout=30_000, polling=20)
            times.append(page.evaluate("performance.now()") / 1000)
            page.close()
        browser.close()
    return times


def soak(base: str, token: str, minutes: float, every: float = 30.0) -> list[tuple[float, float, int]]:
    """(minutes since start, JS heap after a forced GC in MB, DOM nodes) every `every` s."""
    from playwright.sync_api import sync_playwright

    samples = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(f"{base}/wall?rotate=10&token={token}")
        page.wait_for_function(PANELS_READY, timeout=30_000)
        started = time.monotonic()
        while True:
            cdp.send("HeapProfiler.collectGarbage")
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            t = (time.monotonic() - started) / 60
            samples.append((t, metrics["JSHeapUsedSize"] / 2**20, int(metrics["Nodes"])))
            print(f"  soak {t:6.1f} min: heap {samples[-1][1]:7.2f} MB, DOM nodes {samples[-1][2]}", flush=True)
            if t >= minutes:
                break
            page.wait_for_timeout(every * 1000)
        browser.close()
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--displays", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--refresh", type=float, default=1.0, help="each display's refresh interval")
    ap.add_argument("--poll", type=float, default=2.0, help="the poller's interval")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--soak-minutes", type=float, default=0)
    args = ap.parse_args()

    with fresh_store("postgresql") as engine:
        url = engine.url.render_as_string(hide_password=False)
        t0 = time.perf_counter()
        seed(engine, seed=20261127, total_cases=args.cases, events=False)
        print(f"store: PostgreSQL, {args.cases:,} cases seeded in {time.perf_counter() - t0:.1f} s", flush=True)

        _id, token = new_display_token(engine, "bench walls")
        c = server_costs(url, f"bench-wall-{uuid.uuid4().hex[:8]}", token)
        print("\n## Server time per refresh (in-process, Redis cache)")
        print(f"unchanged snapshot:            median {ms(statistics.median(c['unchanged']))}, "
              f"p95 {ms(pct(c['unchanged'], 95))} ({len(c['unchanged'])} refreshes)")
        print(f"changed, first display:        median {ms(statistics.median(c['changed_first']))} "
              f"(renders the new version)")
        print(f"changed, the other displays:   median {ms(statistics.median(c['changed_others']))}, "
              f"p95 {ms(pct(c['changed_others'], 95))} (render cache)")
        print(f"ratio changed-first / unchanged: {statistics.median(c['changed_first']) / statistics.median(c['unchanged']):.0f}x")
        print(f"payload of an unchanged refresh: {statistics.median(c['unchanged_bytes']):.0f} bytes (target < 1024)")
        print(f"payload of a changed refresh:    median {statistics.median(c['changed_bytes']) / 1024:.1f} KiB, "
              f"{statistics.median(c['outputs_sent']):.0f} of {len(WallDisplay(None).outputs)} outputs sent")

        dep = Deployment(url, f"bench-wall-{uuid.uuid4().hex[:8]}", workers=args.workers, poll=args.poll,
                         refresh=args.refresh)
        try:
            r = many_displays(dep, args.displays, args.seconds, args.refresh, token)
            print(f"\n## {args.displays} displays, gunicorn {args.workers} workers x 8 threads, poll every "
                  f"{args.poll:g} s, refresh every {args.refresh:g} s, simulator writing, {args.seconds:g} s")
            print(f"refreshes: {len(r['all'])} ({len(r['changed'])} with a new version, "
                  f"{len(r['unchanged'])} unchanged), versions seen: {r['versions']}, errors: {len(r['errors'])}")
            print(f"latency all:       p50 {ms(pct(r['all'], 50))}, p95 {ms(pct(r['all'], 95))}, "
                  f"p99 {ms(pct(r['all'], 99))} (target p95 <= 20 ms)")
            if r["changed"]:
                print(f"latency changed:   p50 {ms(pct(r['changed'], 50))}, p95 {ms(pct(r['changed'], 95))}")
            print(f"latency unchanged: p50 {ms(pct(r['unchanged'], 50))}, p95 {ms(pct(r['unchanged'], 95))}")
            times = first_render(dep.base, token)
            print("\n## Headless Chromium: first full render of /wall (every panel drawn)")
            print(f"median {statistics.median(times):.2f} s over {len(times)} loads "
                  f"({', '.join(f'{t:.2f}' for t in times)})")
            if args.soak_minutes:
                print(f"\n## Browser memory over {args.soak_minutes:g} min (refresh {args.refresh:g} s, "
                      f"poll {args.poll:g} s, rotating every 10 s)")
                samples = soak(dep.base, token, args.soak_minutes)
                settled = [x for x in samples if x[0] >= 2] or samples  # the first minutes warm up
                early = [x[1] for x in settled if x[0] <= settled[0][0] + 5]
                late = [x[1] for x in settled if x[0] >= settled[-1][0] - 5]
                span_h = max(1e-9, (settled[-1][0] - settled[0][0]) / 60)
                print(f"JS heap after GC, after 2 min of warm-up: first 5 min {statistics.mean(early):.2f} MB, "
                      f"last 5 min {statistics.mean(late):.2f} MB (range {min(x[1] for x in settled):.2f}-"
                      f"{max(x[1] for x in settled):.2f} MB), drift {(statistics.mean(late) - statistics.mean(early)) / span_h:+.2f} "
                      f"MB/hour; DOM nodes {samples[0][2]} -> {samples[-1][2]}")
        finally:
            dep.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
