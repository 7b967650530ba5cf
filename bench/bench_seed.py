"""Seed throughput: how fast the demo city loads at 100k / 1M / 10M cases.

    python bench/bench_seed.py --scales 100k,1M --backends sqlite,postgresql
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stores import fresh_store  # noqa: E402
from dashboard.cli import _scale  # noqa: E402
from datasource.demo.seed import seed  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", default="100k,1M")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--no-events", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for backend in args.backends.split(","):
        for raw in args.scales.split(","):
            n = _scale(raw)
            with fresh_store(backend) as engine:
                report = seed(engine, total_cases=n, events=not args.no_events, occupancy_days=7)
            cases_s = report.seconds.get("cases", 0) + report.seconds.get("generate cases", 0)
            print(f"\n== seed {backend} {raw} ({n:,} cases)")
            print("\n".join(report.lines()))
            results.append((backend, raw, n, report.total_seconds, report.total_rows, cases_s))
    print("\n== summary")
    print(f"{'backend':<11} {'scale':>6} {'total s':>9} {'rows/s':>11} {'cases/s (gen+load)':>19}")
    for backend, raw, n, secs, rows, cases_s in results:
        print(f"{backend:<11} {raw:>6} {secs:9.1f} {rows / secs:11,.0f} {n / cases_s:19,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
