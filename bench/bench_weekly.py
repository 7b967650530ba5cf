"""The full weekly export (the city and every district: HTML, PDF, the wall's PNG, XLSX,
manifest) on a PostgreSQL store of the demo city, and each step's share of the time.
Target: 60 s or less at 1M cases.

    python bench/bench_weekly.py --cases 1M
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stores import fresh_store  # noqa: E402
from dashboard.cli import _scale  # noqa: E402
from dashboard.settings import SETTINGS, Settings  # noqa: E402
from dashboard.weekly.runner import FORMATS, export_week  # noqa: E402
from dashboard.weekly.weeks import last_finished  # noqa: E402
from datasource.demo.seed import seed  # noqa: E402
from datasource.engine import make_engine  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
TARGET_S = 60.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=_scale, default=1_000_000, help="100k, 1M, 10M or a number")
    ap.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    ap.add_argument("--store-url", help="export from this store, already seeded the same way (skips seeding)")
    args = ap.parse_args(argv)
    # the history ends on a Monday morning: the export is of the week just finished
    now = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
    week = last_finished(now, TZ)
    store = nullcontext(make_engine(args.store_url)) if args.store_url else fresh_store(args.backend)
    with store as engine, tempfile.TemporaryDirectory(prefix="cc-weekly-") as folder:
        if not args.store_url:
            t0 = time.perf_counter()
            seed(engine, total_cases=args.cases, now=now - dt.timedelta(hours=6), occupancy_days=9, events=True)
            print(f"seeded {args.cases:,} cases on {args.backend} in {time.perf_counter() - t0:.1f} s", flush=True)
        known = {s.name for s in SETTINGS}
        values = {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "REPORTS_DIR": folder,
                  "REDIS_URL": "", "LOCAL_CACHE_DIR": str(Path(folder) / "cache"), "AUTH_ENABLED": False,
                  "POLLER_ENABLED": False, "LOG_LEVEL": "WARNING"}
        settings = Settings.from_env({k: v for k, v in values.items() if k in known})
        result = export_week(settings, week, scope="all", now=now, trigger="bench")
        if result.status != "ok":
            print(f"export {result.status}: {result.error}")
            return 1
        total = result.seconds
        print(f"\nweekly export {week.label}, {len(result.scopes)} reports (city + districts), "
              f"{args.cases:,} cases on {args.backend}: {total:.1f} s (target {TARGET_S:.0f} s: "
              f"{'met' if total <= TARGET_S else 'MISSED'})")
        print(f"{'step':<10}{'seconds':>10}{'share':>9}")
        for name in FORMATS:
            s = result.timings.get(name, 0.0)
            print(f"{name:<10}{s:>10.2f}{s / total:>9.1%}")
        other = total - sum(result.timings.values())
        print(f"{'other':<10}{other:>10.2f}{other / total:>9.1%}   (lock, checks, renames)")
        sizes = sum(p.stat().st_size for p in (Path(folder) / week.label).rglob("*") if p.is_file())
        print(f"archive of the week: {sizes / 1e6:.1f} MB")
    return 0 if total <= TARGET_S else 2


if __name__ == "__main__":
    sys.exit(main())
