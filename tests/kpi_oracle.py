"""Independent, straightforward KPI computations over raw rows with pandas, for tests.

Deliberately written from the definitions in docs/kpis.md, without the rollups or any
code of dashboard.kpis, so that the two can disagree.
"""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from sqlalchemy import select

from datasource import schema


def frame(engine, model) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(model.__table__)).all()
    df = pd.DataFrame(rows, columns=model.__table__.c.keys())
    for c in df.columns:
        if c.endswith("_at"):
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def local_bounds(now: dt.datetime, tz, name: str):
    """(start, end, prev_start, prev_end) straight from the calendar, in UTC."""
    local = pd.Timestamp(now).tz_convert(tz)
    midnight = local.normalize()
    if name == "today":
        start, prev_start = midnight, midnight - pd.DateOffset(days=1)
    elif name == "week":
        start = midnight - pd.Timedelta(days=local.weekday())
        prev_start = start - pd.DateOffset(weeks=1)
    elif name == "month":
        start = midnight.replace(day=1)
        prev_start = start - pd.DateOffset(months=1)
    else:
        start = midnight.replace(month=1, day=1)
        prev_start = start - pd.DateOffset(years=1)
    elapsed = pd.Timestamp(now) - start
    prev_end = min(prev_start + elapsed, start)
    return start, pd.Timestamp(now), prev_start, prev_end


STAGE_COLUMNS = {"filed": "filed_at", "dispatched": "dispatched_at", "handled": "handled_at",
                 "verified": "verified_at", "closed": "closed_at", "deadline": "deadline_at"}


def recorded_inputs(cases: pd.DataFrame) -> set[str]:
    """Stages some case has a time for, and "deadline" when some case has one; all of
    them when there is no case at all."""
    if cases.empty:
        return set(STAGE_COLUMNS)
    return {s for s, col in STAGE_COLUMNS.items() if cases[col].notna().any()}


def case_period(cases: pd.DataFrame, start, end, inclusive_end: bool) -> dict:
    """Counts and cohort rates for [start, end) (or [start, end]) per district and city.
    A figure whose inputs the city does not record is None, and listed under
    "not_recorded": one needing a stage no case has a time for (the filed cohort needs
    filing, closure figures closing, handling figures handling), and the on-time rates of
    a cohort with cases but no deadline at all (their cohort is the cases with one)."""
    def within(col):
        s = cases[col]
        return (s >= start) & ((s <= end) if inclusive_end else (s < end))

    stages = recorded_inputs(cases)
    out = {}
    cohort_all = cases[within("filed_at") & ~cases.voided]
    for key in list(cases.district_code.unique()) + ["city"]:
        sel = (cases.district_code == key) if key != "city" else pd.Series(True, index=cases.index)
        cohort = cohort_all[sel[cohort_all.index]]
        filed = len(cohort)
        closed = cohort.closed_at.notna()
        handled = cohort.handled_at.notna()
        dated = cohort[cohort.deadline_at.notna()]

        def r(x):
            return x / filed if filed else None

        def on_time(col):
            return ((dated[col].notna() & (dated[col] <= dated.deadline_at)).sum() / len(dated)) if len(dated) else None

        got = {
            "reported": int((within("reported_at") & sel).sum()),
            "closed": int((within("closed_at") & sel).sum()),
            "filed": filed,
            "closure_rate": r(closed.sum()),
            "on_time_closure_rate": on_time("closed_at"),
            "handling_rate": r(handled.sum()),
            "on_time_handling_rate": on_time("handled_at"),
            "rework_rate": r((cohort.rework_count > 0).sum()),
            "extension_rate": r(cohort.extended.sum()),
            "avg_handle_hours": ((cohort.handled_at - cohort.filed_at)[handled].dt.total_seconds().mean() / 3600)
            if handled.any() else None,
            "avg_close_hours": ((cohort.closed_at - cohort.filed_at)[closed].dt.total_seconds().mean() / 3600)
            if closed.any() else None,
        }
        missing = set()
        if "filed" not in stages:
            missing |= {"filed", "closure_rate", "on_time_closure_rate", "handling_rate", "on_time_handling_rate",
                        "rework_rate", "extension_rate", "avg_handle_hours", "avg_close_hours"}
        if "closed" not in stages:
            missing |= {"closed", "closure_rate", "on_time_closure_rate", "avg_close_hours"}
        if "handled" not in stages:
            missing |= {"handling_rate", "on_time_handling_rate", "avg_handle_hours"}
        if (filed and dated.empty) or "deadline" not in stages:
            missing |= {"on_time_closure_rate", "on_time_handling_rate"}
        out[key] = {**{k: (None if k in missing else v) for k, v in got.items()}, "not_recorded": missing}
    return out


OPEN = set(schema.OPEN_STATUSES)


def stage_now(cases: pd.DataFrame) -> pd.Series:
    """Voided cases are voided, cases with a closing time closed, the rest their status."""
    return cases.status.where(~cases.voided, "voided").where(cases.closed_at.isna() | cases.voided, "closed")


def open_counts(cases: pd.DataFrame) -> dict:
    open_ = cases[stage_now(cases).isin(OPEN)]
    return {"total": len(open_),
            "by_district_stage": open_.groupby(["district_code", "status"]).size().to_dict()}


def overdue(cases: pd.DataFrame, now: dt.datetime, edges_h) -> dict:
    running = cases[stage_now(cases).isin(OPEN - {"parked"}) & (cases.deadline_at < pd.Timestamp(now))]
    hours = (pd.Timestamp(now) - running.deadline_at).dt.total_seconds() / 3600
    bucket = pd.cut(hours, bins=list(edges_h) + [float("inf")], right=False, labels=False)
    return {"total": len(running), "by_district": running.groupby("district_code").size().to_dict(),
            "ageing": bucket.value_counts().sort_index().to_dict()}


def daily(cases: pd.DataFrame, now: dt.datetime, tz, days: int) -> list[dict]:
    today = pd.Timestamp(now).tz_convert(tz).date()
    first = today - dt.timedelta(days=days - 1)
    out = []
    rep = cases.reported_at.dt.tz_convert(tz).dt.date.value_counts()
    clo = cases.closed_at.dropna().dt.tz_convert(tz).dt.date.value_counts()
    for i in range(days):
        d = first + dt.timedelta(days=i)
        out.append({"date": d.isoformat(), "reported": int(rep.get(d, 0)), "closed": int(clo.get(d, 0))})
    return out


def assert_close(a, b, path="$"):
    """Two payloads equal, floats to a relative 1e-9 (or 1e-6 absolute); `path` names a difference."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (path, a, b)
    else:
        assert a == b, (path, a, b)
