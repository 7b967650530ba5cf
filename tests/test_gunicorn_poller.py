"""Real gunicorn, three workers, one Redis: one poll per interval, all from one process,
and another worker takes over when that one is killed."""
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from datasource.demo.seed import seed
from datasource.engine import make_engine
from tests.conftest import BACKLOG, FIXED_NOW, REDIS_URL, new_store_url
from tests.service_helpers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS, LOCK_SECONDS = 1, 3


def gunicorn_app():
    """What each gunicorn worker loads: the real app, plus a section that logs every
    poll (pid and time) under the test's Redis prefix."""
    from dashboard import create_app
    from dashboard.kpis.sections import open_cases_section

    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    prefix = os.environ["CACHE_PREFIX"]

    def probe(engine, now, tz):
        client.rpush(f"{prefix}:test:polls", f"{os.getpid()} {time.time():.3f}")
        return 1

    server = create_app(sections={"open_cases": open_cases_section, "probe": probe}).server
    client.rpush(f"{prefix}:test:workers", os.getpid())
    return server


class _Timeout(Exception):
    pass


def _on_alarm(*_):
    raise _Timeout("the gunicorn test ran out of time")


def _polls(client, prefix) -> list[tuple[int, float]]:
    return [(int(pid), float(at)) for pid, at in
            (entry.split() for entry in client.lrange(f"{prefix}:test:polls", 0, -1))]


def _get(url) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_three_workers_one_poller_and_takeover(request, tmp_path, redis_prefix):
    store = new_store_url("postgresql", request, tmp_path)
    engine = make_engine(store)
    seed(engine, profile=BACKLOG, seed=11, now=FIXED_NOW, total_cases=2000, occupancy_days=1)
    engine.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": store, "REDIS_URL": REDIS_URL, "CACHE_PREFIX": redis_prefix,
           "POLL_SECONDS": str(POLL_SECONDS), "LEADER_LOCK_SECONDS": str(LOCK_SECONDS),
           "LOCAL_CACHE_DIR": str(tmp_path / "cache"), "LOG_LEVEL": "WARNING"}
    log_path = tmp_path / "gunicorn.log"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(150)  # the whole test, gunicorn's start included
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "3",
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5",
             "tests.test_gunicorn_poller:gunicorn_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            _until(lambda: client.llen(f"{redis_prefix}:test:workers") >= 3, 90, "three workers")
            _until(lambda: _get(base + "/readyz")[0] == 200, 30, "/readyz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_path.read_text(errors='replace')[-3000:]}") from None

        # six intervals with three workers competing
        start = time.time()
        time.sleep(6)
        window = [(pid, at) for pid, at in _polls(client, redis_prefix) if start <= at < start + 6]
        assert 5 <= len(window) <= 7, window  # about 6, not 18
        assert len({pid for pid, _ in window}) == 1, window
        times = [at for _, at in window]
        assert all(b - a > 0.5 for a, b in zip(times, times[1:])), times

        # every worker reports the leader's figures
        for _ in range(6):
            code, text = _get(base + "/metrics")
            count = next(float(line.split()[-1]) for line in text.splitlines()
                         if line.startswith("cc_poll_duration_seconds_count"))
            assert code == 200 and count >= len(window)

        # the leader dies without a word: another worker takes over once its lock expires
        leader = window[-1][0]
        os.kill(leader, signal.SIGKILL)
        killed = time.time()
        _until(lambda: any(pid != leader for pid, at in _polls(client, redis_prefix) if at > killed),
               LOCK_SECONDS + 10, "a new leader")
        after = [(pid, at) for pid, at in _polls(client, redis_prefix) if at > killed]
        assert after[0][1] - killed <= LOCK_SECONDS + 2, after
        successor = after[-1][0]
        time.sleep(3)
        later = [(pid, at) for pid, at in _polls(client, redis_prefix) if at > after[-1][1]]
        assert {pid for pid, _ in later} == {successor} and 2 <= len(later) <= 4, later
        assert leader not in {pid for pid, _ in after}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if proc.poll() is None:
            proc.terminate()  # the master stops its workers; they release the lock
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        client.close()
