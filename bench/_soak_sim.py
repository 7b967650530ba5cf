"""The soak's simulator process: the demo simulator's ticks, counting what it committed.

    python bench/_soak_sim.py STATE.json   (DATABASE_URL, SIMULATOR_RATE from the environment)

A tick is one transaction: its reports count only when the tick returned (committed). A
tick that raised (the store cut) counts as failed; one whose commit landed although the
client saw an error would show up as more rows in the store than counted, never fewer.
The counts are rewritten atomically after every tick and once more on SIGTERM.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasource.demo.simulate import Simulator  # noqa: E402
from datasource.engine import make_engine  # noqa: E402


def main(state_path: str) -> int:
    engine = make_engine(os.environ["DATABASE_URL"], create=False)
    rate = float(os.environ.get("SIMULATOR_RATE") or 2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sim = None
    counts = {"pid": os.getpid(), "ticks": 0, "failed_ticks": 0, "reported": 0, "moved": 0,
              "visits": 0, "problems": 0, "readings": 0, "last_error": None, "done": False}
    path = Path(state_path)

    def save():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(counts))
        os.replace(tmp, path)

    last = time.monotonic()
    while not stop.is_set():
        start = time.monotonic()
        try:
            if sim is None:  # the city is read from the store; a cut at start is retried
                sim = Simulator(engine, rate=rate, occupancy_seconds=20)
            rep = sim.tick(dt.datetime.now(dt.timezone.utc), max(start - last, 1.0))
            counts["ticks"] += 1
            for k in ("reported", "moved", "visits", "problems", "readings"):
                counts[k] += getattr(rep, k)
        except Exception as exc:  # noqa: BLE001 - the store cut: counted, the next tick tries again
            counts["failed_ticks"] += 1
            counts["last_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        last = start
        save()
        stop.wait(max(0.0, 1.0 - (time.monotonic() - start)))
    counts["done"] = True
    save()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
