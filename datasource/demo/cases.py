"""Vectorised generation of cases with their lifecycle, case events, visits and problems.

Times are handled as float seconds since the epoch (UTC) and turned into naive UTC
`datetime64[us]` at the end, the form datasource.bulk writes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR = 3600.0
DAY = 86400.0
INF = np.inf

# share of reports by local hour: quiet at night, busy in the morning and late afternoon
HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.6, 1.5, 3.5, 6, 7.5, 8, 7.5,
                         6, 6.5, 7.5, 8, 7.5, 6.5, 5, 4, 3.5, 3, 2, 1.4])
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
SOURCE_ACTOR = {"app": "市民(郑好拍)", "hotline": "12345热线", "patrol": "网格巡查员",
                "enterprise": "企业网格联络员", "sensor": "物联感知设备"}
CENTER = "城运指挥中心"
VERIFIER = "核查员"


@dataclass
class CaseContext:
    """What the generator needs to know about one district."""
    code: str
    short_zh: str
    stuck_share: float
    late_share: float
    grid_ids: np.ndarray       # level-2 and exclusive grids, to place cases in
    grid_street: np.ndarray    # street id of each grid
    grid_lon: np.ndarray
    grid_lat: np.ndarray
    street_names: dict         # street id -> name
    grid_names: np.ndarray


@dataclass
class Categories:
    codes: np.ndarray
    names: np.ndarray
    limits_h: np.ndarray
    departments: np.ndarray
    weights: np.ndarray


def _lognormal(rng, median_s: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(np.log(median_s), sigma, n)


# intake by weekday (Monday first: fewer reports at the weekend) and by season (more in
# summer: rain, heat, outdoor trade); history and the live simulator share them, so the
# seam between the seeded past and the live present shows no jump
WEEKDAY_WEIGHTS = np.array([1.06, 1.05, 1.03, 1.02, 1.0, 0.90, 0.82])
SEASON_SWING = 0.12


def day_weight(local_date) -> float:
    """Relative intake of one local day (about 1 on average over a year)."""
    doy = local_date.timetuple().tm_yday
    season = 1.0 + SEASON_SWING * np.sin(2 * np.pi * (doy - 105) / 365.25)
    return float(WEEKDAY_WEIGHTS[local_date.weekday()] / WEEKDAY_WEIGHTS.mean() * season)


def intake_per_second(per_year: float, local_time) -> float:
    """Reports a second at `local_time` for a city of `per_year` reports a year."""
    return per_year / 365.0 * day_weight(local_time.date()) * HOUR_WEIGHTS[local_time.hour] / HOUR


def report_times(rng, n: int, start_local_midnight: float, day_weights: np.ndarray, now: float) -> np.ndarray:
    """Report times over the local days from `start_local_midnight` (one weight each),
    with the daily rhythm; today only up to `now`, so no day carries another's reports."""
    hours = (day_weights[:, None] * HOUR_WEIGHTS[None, :]).ravel()
    begin = start_local_midnight + np.arange(hours.size) * HOUR
    span = np.clip((now - begin) / HOUR, 0.0, 1.0)  # the share of each hour already past
    hours = hours * span
    pick = rng.choice(hours.size, n, p=hours / hours.sum())
    t = begin[pick] + rng.uniform(0, 1, n) * span[pick] * HOUR
    return np.sort(np.minimum(t, now))


def lifecycle(rng, n: int, reported: np.ndarray, limit_h: np.ndarray, ctx: CaseContext,
              profile: dict, now: float) -> dict[str, np.ndarray]:
    """Times of every lifecycle step (inf = not reached) and the derived status.

    No case waits in one stage for months (docs: DOMAIN): a "stuck" case stalls at one
    stage for a day or two and goes on late; a rare long stall becomes 挂账 (parked,
    clock suspended) until the engineering or seasonal cause is gone, like the parked
    share; parked cases resume with their deadline moved on by the time parked."""
    limit = limit_h * HOUR
    voided = rng.random(n) < profile["void_share"]
    stuck = rng.random(n) < ctx.stuck_share
    late = rng.random(n) < ctx.late_share
    rework = rng.random(n) < profile["rework_share"]
    extended = rng.random(n) < profile["extension_share"]
    stall_for = _lognormal(rng, profile.get("stall_median_hours", 24) * HOUR, 1.0, n)
    long_stall = stuck & (stall_for > profile.get("park_after_days", 10) * DAY)
    parked = (rng.random(n) < profile["parked_share"]) | long_stall
    stuck &= ~long_stall
    park_for = _lognormal(rng, profile.get("parked_median_days", 45) * DAY, 0.6, n)

    filed = reported + _lognormal(rng, 12 * 60, 0.7, n)
    voided_at = np.where(voided, filed, INF)
    filed = np.where(voided, INF, filed)
    stall = rng.integers(0, 3, n)  # 0: after filing, 1: after dispatch, 2: after handling
    delay = np.where(stuck, stall_for, 0.0)
    dispatched = filed + _lognormal(rng, 8 * 60, 0.7, n) + np.where(stall == 0, delay, 0.0)
    deadline = filed + limit + np.where(extended, limit, 0.0)
    # handling time: most within the limit, the "late" ones past it
    # the deadline covers handling, verification and closing, so on-time cases handle well within it
    frac = np.where(late, rng.uniform(1.05, 2.5, n), rng.beta(2.5, 2.5, n) * 0.75)
    frac = np.where(extended, rng.uniform(1.05, 1.9, n), frac)
    work = np.maximum(limit * frac, 300.0) + np.where(stall == 1, delay, 0.0)
    parked_at = np.where(parked, dispatched + _lognormal(rng, 6 * HOUR, 0.5, n), INF)
    resumed = np.where(parked, parked_at + park_for, -INF)
    deadline = np.where(parked, deadline + park_for, deadline)  # the clock stops while parked
    handled1 = np.where(parked, resumed + limit * rng.beta(2.2, 2.8, n) * 0.7, dispatched + work)
    fail_at = np.where(rework, handled1 + _lognormal(rng, 2 * HOUR, 0.6, n), INF)
    handled = np.where(rework, fail_at + limit * rng.uniform(0.2, 0.8, n), handled1)
    verified = handled + np.minimum(_lognormal(rng, 1.5 * HOUR, 0.8, n), 0.12 * limit) \
        + np.where(stall == 2, delay, 0.0)
    closed = verified + np.minimum(_lognormal(rng, 40 * 60, 0.8, n), 0.08 * limit)
    extended_at = np.where(extended & ~parked, dispatched + limit * 0.8, INF)
    # an extension is granted while the case is with its department
    extended_at = np.where(np.isfinite(dispatched) & (extended_at < handled1), extended_at, INF)

    t = {"reported": reported, "filed": filed, "dispatched": dispatched, "handled1": handled1,
         "rework": fail_at, "handled": handled, "verified": verified, "closed": closed,
         "voided": voided_at, "parked": parked_at, "extended": extended_at, "deadline": deadline}
    for k in t:  # steps after now have not happened yet
        if k != "deadline":
            t[k] = np.where(t[k] <= now, t[k], INF)
    t["deadline"] = np.where(np.isfinite(filed), deadline, INF)
    # a parked case that has not resumed yet keeps its first deadline (the clock is stopped)
    t["deadline"] = np.where(np.isfinite(t["parked"]) & ~np.isfinite(t["handled1"]),
                             deadline - park_for, t["deadline"])
    # the status is the latest step reached (a resumed 挂账 case moves on from parked)
    names = np.array(["reported", "filed", "dispatched", "parked", "handled", "rework", "handled",
                      "verified", "closed", "voided"], dtype=object)
    steps = np.stack([t[k] for k in ("reported", "filed", "dispatched", "parked", "handled1", "rework",
                                      "handled", "verified", "closed", "voided")])
    reached = np.where(np.isfinite(steps), steps, -INF)
    t["status"] = names[reached.shape[0] - 1 - np.argmax(reached[::-1], axis=0)]
    return t


def _ts(seconds: np.ndarray) -> np.ndarray:
    """float epoch seconds (inf = none) -> naive UTC datetime64[us] (NaT = none)."""
    out = np.full(seconds.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    ok = np.isfinite(seconds)
    out[ok] = (seconds[ok] * 1e6).astype("int64").astype("datetime64[us]")
    return out


def generate_cases(rng, ctx: CaseContext, cats: Categories, profile: dict, sources: dict,
                   first_id: int, n: int, start_local_midnight: float, day_weights: np.ndarray,
                   now: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` cases of one district with ids from `first_id`, and their events."""
    reported = report_times(rng, n, start_local_midnight, day_weights, now)
    cat = rng.choice(len(cats.codes), n, p=cats.weights)
    t = lifecycle(rng, n, reported, cats.limits_h[cat], ctx, profile, now)
    src_names = np.array(list(sources))
    source = rng.choice(src_names, n, p=np.array(list(sources.values())) / sum(sources.values()))
    g = rng.integers(0, len(ctx.grid_ids), n)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    street_id = ctx.grid_street[g]
    street_name = np.array([ctx.street_names[s] for s in street_id], dtype=object)
    cat_name = cats.names[cat]
    status = t["status"]
    last = np.fmax.reduce([np.where(np.isfinite(t[k]), t[k], -INF) for k in
                           ("reported", "filed", "dispatched", "handled1", "rework", "handled",
                            "verified", "closed", "voided", "parked", "extended")])
    cases = pd.DataFrame({
        "id": ids,
        "external_id": pd.Series(ids).map(lambda i: f"ZZ{ctx.code}-{i:09d}").to_numpy(),
        "source": source,
        "category_code": cats.codes[cat],
        "district_code": ctx.code,
        "street_id": street_id,
        "grid_id": ctx.grid_ids[g],
        "lat": np.round(ctx.grid_lat[g] + rng.normal(0, 0.0025, n), 6),
        "lon": np.round(ctx.grid_lon[g] + rng.normal(0, 0.003, n), 6),
        "address": street_name + ctx.grid_names[g] + "附近",
        "summary": cat_name + "：" + street_name + "群众反映，请及时处置",
        "department": cats.departments[cat],
        "status": status,
        "reported_at": _ts(t["reported"]),
        "filed_at": _ts(t["filed"]),
        "dispatched_at": _ts(t["dispatched"]),
        "handled_at": _ts(np.where(np.isfinite(t["handled"]), t["handled"],
                                   np.where(status == "rework", t["handled1"], INF))),
        "verified_at": _ts(t["verified"]),
        "closed_at": _ts(t["closed"]),
        "deadline_at": _ts(t["deadline"]),
        "rework_count": np.isfinite(t["rework"]).astype(np.int16),
        "extended": np.isfinite(t["extended"]),
        "voided": np.isfinite(t["voided"]),
        "updated_at": _ts(last),
    })
    return cases, case_events(ids, t, source, cats.departments[cat])


def case_events(ids, t, source, department) -> pd.DataFrame:
    """One row per transition that has happened, in order."""
    steps = [  # (time key, from, to, actor)
        ("reported", None, "reported", np.vectorize(SOURCE_ACTOR.get)(source)),
        ("voided", "reported", "voided", CENTER),
        ("filed", "reported", "filed", CENTER),
        ("dispatched", "filed", "dispatched", CENTER),
        ("extended", "dispatched", "dispatched", department),
        ("parked", "dispatched", "parked", department),
        ("handled1", np.where(np.isfinite(t["parked"]), "parked", "dispatched"), "handled", department),
        ("rework", "handled", "rework", VERIFIER),
        ("handled", "rework", "handled", department),
        ("verified", "handled", "verified", VERIFIER),
        ("closed", "verified", "closed", CENTER),
    ]
    frames = []
    reworked = np.isfinite(t["rework"])
    for key, frm, to, actor in steps:
        when = t[key]
        ok = np.isfinite(when)
        if key == "handled":
            ok &= reworked  # the plain handling is "handled1"
        if not ok.any():
            continue
        actor_arr = np.broadcast_to(np.asarray(actor, dtype=object), ids.shape)[ok]
        frm = frm[ok] if isinstance(frm, np.ndarray) else frm
        frames.append(pd.DataFrame({
            "case_id": ids[ok], "from_status": frm, "to_status": to, "at": _ts(when[ok]),
            "actor": actor_arr, "note": "延期" if key == "extended" else None,
        }))
    ev = pd.concat(frames, ignore_index=True)
    return ev.sort_values(["case_id", "at"], kind="stable", ignore_index=True)


PROBLEM_TYPES = np.array(["hiring", "licence", "tax", "financing", "infrastructure", "safety", "other"])
PROBLEM_WEIGHTS = np.array([0.20, 0.18, 0.14, 0.12, 0.18, 0.10, 0.08])
PROBLEM_DEPT = {"hiring": "人社局", "licence": "市场监管局", "tax": "税务局", "financing": "金融局",
                "infrastructure": "城管局", "safety": "应急管理局", "other": "街道办事处"}
PROBLEM_ZH = {"hiring": "用工需求", "licence": "证照办理", "tax": "税务登记", "financing": "融资需求",
              "infrastructure": "基础设施（道路积水、管网）", "safety": "安全生产", "other": "其他诉求"}


def generate_visits(rng, code: str, enterprises: pd.DataFrame, n: int, profile: dict,
                    start: float, now: float, first_visit_id: int, first_problem_id: int):
    """Visits by grid liaisons to the district's enterprises, and the problems they collected."""
    ent = enterprises[enterprises.district_code == code]
    weight = np.where(ent.above_scale.to_numpy(), 4.0, 1.0)
    pick = rng.choice(len(ent), n, p=weight / weight.sum())
    when = np.sort(rng.uniform(start, now, n))
    hour = (when % DAY) / HOUR  # UTC hour; liaisons visit 08:00-18:00 local = 00:00-10:00 UTC
    when = when - hour * HOUR + rng.uniform(0.0, 10.0, n) * HOUR
    when = np.minimum(when, now)
    vids = np.arange(first_visit_id, first_visit_id + n)
    egrid = ent.exclusive_grid_id.to_numpy(dtype="float64", na_value=np.nan)[pick]
    ogrid = ent.grid_id.to_numpy()[pick]
    visits = pd.DataFrame({
        "id": vids,
        "external_id": [f"V{code}{i:07d}" for i in vids],
        "enterprise_id": ent.id.to_numpy()[pick],
        "district_code": code,
        "grid_id": np.where(np.isnan(egrid), ogrid, egrid).astype(np.int64),
        "visited_at": _ts(when),
        "liaison": [f"网格联络员{int(g) % 97 + 1:02d}号" for g in ogrid],
        "note": "走访了解经营情况",
        "updated_at": _ts(when),
    })
    has = rng.random(n) < profile["problems_per_visit"]
    m = int(has.sum())
    ptype = rng.choice(PROBLEM_TYPES, m, p=PROBLEM_WEIGHTS)
    raised = when[has]
    resolve = raised + rng.exponential(4.5 * DAY, m) + HOUR
    resolve = np.where(rng.random(m) < profile["problem_resolution"], resolve, INF)
    resolve = np.where(resolve <= now, resolve, INF)
    pids = np.arange(first_problem_id, first_problem_id + m)
    problems = pd.DataFrame({
        "id": pids,
        "external_id": [f"Q{code}{i:07d}" for i in pids],
        "enterprise_id": visits.enterprise_id.to_numpy()[has],
        "visit_id": vids[has],
        "district_code": code,
        "problem_type": ptype,
        "summary": [PROBLEM_ZH[p] for p in ptype],
        "department": [PROBLEM_DEPT[p] for p in ptype],
        "status": np.where(np.isfinite(resolve), "resolved", "open"),
        "raised_at": _ts(raised),
        "resolved_at": _ts(resolve),
        "updated_at": _ts(np.where(np.isfinite(resolve), resolve, raised)),
    })
    return visits, problems
