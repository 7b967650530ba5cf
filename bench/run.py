"""`make bench`: every benchmark, sized for this machine.

For the big runs: BENCH_SEED_SCALES=100k,1M,10M and BENCH_POLL_SCALES=100k,1M,10M; for
the wall's browser memory over a long run: BENCH_WALL_SOAK_MINUTES=120.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_seed.py", "--scales", os.environ.get("BENCH_SEED_SCALES", "100k,1M"),
     "--backends", os.environ.get("BENCH_BACKENDS", "sqlite,postgresql")],
    ["bench_import.py", "--rows", os.environ.get("BENCH_IMPORT_ROWS", "100000")],
    ["bench_poll.py", "--scales", os.environ.get("BENCH_POLL_SCALES", "100k,1M"),
     "--backends", os.environ.get("BENCH_BACKENDS", "postgresql,sqlite"),
     "--interval", os.environ.get("BENCH_POLL_INTERVAL", "5"), "--interleave"],
    ["bench_drill.py", "--cases", os.environ.get("BENCH_DRILL_CASES", "1M"),
     "--backend", os.environ.get("BENCH_DRILL_BACKEND", "postgresql")],
    ["bench_weekly.py", "--cases", os.environ.get("BENCH_WEEKLY_CASES", "1M")],
    ["bench_latency.py", "--displays", os.environ.get("BENCH_LATENCY_DISPLAYS", "1,10,100"),
     "--seconds", os.environ.get("BENCH_LATENCY_SECONDS", "40")],
    ["bench_wall.py", "--displays", os.environ.get("BENCH_WALL_DISPLAYS", "50"),
     "--seconds", os.environ.get("BENCH_WALL_SECONDS", "60"),
     "--soak-minutes", os.environ.get("BENCH_WALL_SOAK_MINUTES", "0")],
]


def main() -> int:
    failed = 0
    for script, *args in RUNS:
        if not (HERE / script).exists():
            continue
        print(f"\n######## {script} {' '.join(args)}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script), *args], cwd=HERE.parent)
    return failed


if __name__ == "__main__":
    sys.exit(main())
