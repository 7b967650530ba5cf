"""Benchmark `python -m dashboard import`: N generated cases into fresh SQLite and
PostgreSQL stores, then the same file again (the no-op re-import).

    python bench/bench_import.py [--rows 100000] [--backends sqlite,postgresql]

PostgreSQL: a throw-away database is created and dropped through the admin URL
(BENCH_PG_URL, else TEST_PG_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from sqlalchemy import func, select  # noqa: E402

from bench._stores import fresh_store  # noqa: E402
from datasource.importer import run_import  # noqa: E402
from datasource.reference import load_reference, read_categories, read_districts  # noqa: E402
from datasource.schema import Case, CaseEvent  # noqa: E402
HEADER = ["案件编号", "问题来源", "问题类型", "所属区", "经度", "纬度", "发生地址", "问题描述",
          "上报时间", "立案时间", "派遣时间", "处置时间", "结案时间"]
MAPPING = """
columns: {external_id: 案件编号, source: 问题来源, category_code: 问题类型, district_code: 所属区,
          lon: 经度, lat: 纬度, address: 发生地址, summary: 问题描述, reported_at: 上报时间,
          filed_at: 立案时间, dispatched_at: 派遣时间, handled_at: 处置时间, closed_at: 结案时间}
values:
  source: {数字城管APP: app, 12345市长热线: hotline, 网格员巡查: patrol}
"""


def generate(path: Path, n: int, seed: int = 7, later: bool = False) -> None:
    """A city export of n cases: Chinese columns, district names (10 % only coordinates),
    local times in two shapes, lifecycles of every length. `later`: the same cases one
    export later, every one of them a lifecycle step further (the closed ones re-addressed)."""
    rng = np.random.default_rng(seed)
    districts = [d for d in read_districts() if d.center_lon == d.center_lon]
    cats = [c for c in read_categories() if c["parent_code"]]
    start = dt.datetime(2026, 1, 1).timestamp()
    reported = start + rng.uniform(0, 300 * 86400, n)
    steps = rng.integers(0, 5, n)  # how far each case got
    if later:
        steps = steps + 1
    gaps = rng.exponential(1800, (n, 4)).cumsum(axis=1)
    d_idx = rng.integers(0, len(districts), n)
    c_idx = rng.integers(0, len(cats), n)
    src = np.array(["数字城管APP", "12345市长热线", "网格员巡查"])[rng.integers(0, 3, n)]
    no_name = rng.random(n) < 0.10
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(n):
            d = districts[d_idx[i]]
            t = [reported[i]] + [reported[i] + g for g in gaps[i]]
            times = [dt.datetime.fromtimestamp(x).strftime("%Y-%m-%d %H:%M:%S" if i % 2 else "%Y/%m/%d %H:%M")
                     if k <= steps[i] else "" for k, x in enumerate(t)]
            located = no_name[i] and d.geometry is not None
            w.writerow([f"BENCH-{i:08d}", src[i], cats[c_idx[i]]["code"], "" if located else d.name_zh,
                        f"{d.center_lon:.6f}", f"{d.center_lat:.6f}",
                        f"{d.short_zh}某路{i % 500}号" + ("附近" if later and steps[i] > 4 else ""),
                        f"{cats[c_idx[i]]['name_zh']}，群众反映", *times])


def bench_store(backend: str, data: Path, later: Path, mapping: Path, rows: int) -> None:
    with fresh_store(backend) as engine:
        load_reference(engine)
        for label, data in (("first import", data), ("re-import (no-op)", data), ("later export", later)):
            t0 = time.perf_counter()
            result = run_import(engine, [data], "cases", mapping, None, data.with_suffix(".rejects.csv"),
                                "Asia/Shanghai")
            seconds = time.perf_counter() - t0
            assert result.rejected == 0, result.summary_lines()
            print(f"{backend:<11} {label:<18} {rows:>9,} rows {seconds:8.2f} s {rows / seconds:>10,.0f} rows/s"
                  f"   ({result.inserted:,} inserted, {result.updated:,} updated, "
                  f"{result.unchanged:,} unchanged)", flush=True)
        with engine.connect() as conn:
            cases = conn.execute(select(func.count()).select_from(Case)).scalar_one()
            events = conn.execute(select(func.count()).select_from(CaseEvent)).scalar_one()
        assert cases == rows, (cases, rows)
        print(f"{'':<11} store: {cases:,} cases, {events:,} case events", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000, help="cases in the generated file (default 100000)")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        tmp = Path(tmp)
        data, later, mapping = tmp / "cases.csv", tmp / "later.csv", tmp / "mapping.yaml"
        mapping.write_text(MAPPING, encoding="utf-8")
        t0 = time.perf_counter()
        generate(data, args.rows)
        generate(later, args.rows, later=True)
        print(f"generated {args.rows:,} cases twice ({data.stat().st_size / 1e6:.1f} MB each) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        for backend in backends:
            bench_store(backend, data, later, mapping, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
