"""Enterprise-service and parking KPIs equal straightforward pandas computations."""
import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import delete, insert

from dashboard.kpis.enterprise import compute_enterprise
from dashboard.kpis.enterprise_state import IncrementalEnterprise
from dashboard.kpis.parking import STALE_AFTER, compute_parking
from dashboard.periods import PERIODS
from datasource import schema
from tests import kpi_oracle as oracle
from tests.conftest import BACKLOG, FIXED_NOW, seeded_engine

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def city(backend, request, tmp_path):
    return seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=8, now=FIXED_NOW, total_cases=20000,
                         occupancy_days=2)


@pytest.mark.parametrize("source", ["sql", "state"])
def test_enterprise_periods_match_pandas(city, source):
    """Both answers, the store's and the poller's in-memory state, equal pandas."""
    if source == "state":
        got = IncrementalEnterprise()(city, FIXED_NOW, TZ)
    else:
        got = compute_enterprise(city, FIXED_NOW, TZ)
    visits = oracle.frame(city, schema.EnterpriseVisit)
    problems = oracle.frame(city, schema.EnterpriseProblem)
    for name in PERIODS:
        start, end, prev_start, prev_end = oracle.local_bounds(FIXED_NOW, TZ, name)
        for which, lo, hi, incl in (("value", start, end, True), ("prev", prev_start, prev_end, False)):
            def inside(s):
                return (s >= lo) & ((s <= hi) if incl else (s < hi))
            v = visits[inside(visits.visited_at)]
            p = problems[inside(problems.raised_at)]
            for key, vv, pp in [("city", v, p)] + [
                    (d, v[v.district_code == d], p[p.district_code == d]) for d in got["districts"]]:
                block = got["periods"][name]["city" if key == "city" else "by_district"]
                g = block if key == "city" else block[key]
                assert g["visits"][which] == len(vv), (name, which, key)
                assert g["enterprises_visited"][which] == vv.enterprise_id.nunique()
                assert g["problems_raised"][which] == len(pp)
                resolved = pp.resolved_at.notna()
                want_rate = resolved.sum() / len(pp) if len(pp) else None
                if want_rate is None:
                    assert g["resolution_rate"][which] is None
                else:
                    assert g["resolution_rate"][which] == pytest.approx(want_rate)
                if resolved.any():
                    days = ((pp.resolved_at - pp.raised_at)[resolved].dt.total_seconds() / 86400).mean()
                    assert g["avg_resolve_days"][which] == pytest.approx(days, rel=1e-6)
                sel = problems if key == "city" else problems[problems.district_code == key]
                assert g["problems_resolved"][which] == int(inside(sel.resolved_at.dropna()).sum())
    open_ = problems[problems.status == "open"]
    assert got["open_problems"]["total"] == len(open_)
    assert got["open_problems"]["by_type"] == open_.groupby("problem_type").size().to_dict()


@pytest.mark.parametrize("source", ["sql", "state"])
def test_exclusive_grid_coverage(city, source):
    got = (IncrementalEnterprise()(city, FIXED_NOW, TZ) if source == "state"
           else compute_enterprise(city, FIXED_NOW, TZ))
    ents = oracle.frame(city, schema.Enterprise)
    visits = oracle.frame(city, schema.EnterpriseVisit).merge(
        ents[["id", "exclusive_grid_id"]], left_on="enterprise_id", right_on="id")
    grids = got["exclusive_grids"]
    assert grids and all(g["members"] == int((ents.exclusive_grid_id == g["grid_id"]).sum()) for g in grids)
    for name in PERIODS:
        start, end, prev_start, prev_end = oracle.local_bounds(FIXED_NOW, TZ, name)
        cur = visits[(visits.visited_at >= start) & (visits.visited_at <= end)]
        prev = visits[(visits.visited_at >= prev_start) & (visits.visited_at < prev_end)]
        for g in grids:
            block = got["periods"][name]["by_exclusive_grid"][str(g["grid_id"])]
            mine, before = cur[cur.exclusive_grid_id == g["grid_id"]], prev[prev.exclusive_grid_id == g["grid_id"]]
            assert block["visits"]["value"] == len(mine) and block["visits"]["prev"] == len(before)
            assert block["enterprises_visited"]["value"] == mine.enterprise_id.nunique()
            assert block["enterprises_visited"]["prev"] == before.enterprise_id.nunique()
            if g["members"]:
                assert block["coverage"]["value"] == pytest.approx(mine.enterprise_id.nunique() / g["members"])


def test_parking_now_and_today_match_pandas(city):
    # messy feed: one reading above capacity, one negative, both newest for their facility
    facilities = oracle.frame(city, schema.ParkingFacility)
    motor = facilities[facilities.kind != "non_motor"]
    f1, f2 = motor.iloc[0], motor.iloc[1]
    R = schema.OccupancyReading
    with city.begin() as conn:
        conn.execute(delete(R).where(R.facility_id.in_([int(f1.id), int(f2.id)]),
                                     R.observed_at > FIXED_NOW - dt.timedelta(minutes=1)))
        conn.execute(insert(R), [
            {"facility_id": int(f1.id), "observed_at": FIXED_NOW - dt.timedelta(seconds=5),
             "occupied": int(f1.capacity) + 50, "received_at": FIXED_NOW},
            {"facility_id": int(f2.id), "observed_at": FIXED_NOW - dt.timedelta(seconds=5),
             "occupied": -3, "received_at": FIXED_NOW}])
    got = compute_parking(city, FIXED_NOW, TZ)
    readings = oracle.frame(city, schema.OccupancyReading).merge(
        facilities[["id", "district_code", "kind", "capacity"]], left_on="facility_id", right_on="id")
    readings = readings[readings.kind != "non_motor"]
    readings["clamped"] = readings.occupied.clip(lower=0, upper=readings.capacity)
    recent = readings[(readings.observed_at >= FIXED_NOW - STALE_AFTER) & (readings.observed_at <= FIXED_NOW)]
    newest = recent.sort_values("observed_at").groupby("facility_id").tail(1)
    assert got["city"]["occupied_now"] == newest.clamped.sum()
    assert got["city"]["occupancy_now"] == pytest.approx(newest.clamped.sum() / newest.capacity.sum())
    assert got["city"]["out_of_range_readings"] == 2
    assert got["city"]["reporting_facilities"] == len(newest)
    assert got["city"]["stale_facilities"] == len(motor) - len(newest)
    for d in got["districts"]:
        mine = newest[newest.district_code == d]
        assert got["by_district"][d]["occupied_now"] == mine.clamped.sum()
        fac = facilities[facilities.district_code == d]
        assert got["by_district"][d]["capacity"] == fac[fac.kind != "non_motor"].capacity.sum()
        assert got["by_district"][d]["non_motor_points"] == int((fac.kind == "non_motor").sum())
    assert got["city"]["demo_sites"] == 34
    # today's curve: per local hour, mean clamped occupancy per facility, summed over capacity
    start = oracle.local_bounds(FIXED_NOW, TZ, "today")[0]
    today = readings[(readings.observed_at >= start) & (readings.observed_at <= FIXED_NOW)].copy()
    today["hour"] = today.observed_at.dt.tz_convert(TZ).dt.hour
    per = today.groupby(["hour", "facility_id"]).agg(occ=("clamped", "mean"), cap=("capacity", "max"))
    curve = per.groupby("hour").apply(lambda x: x.occ.sum() / x.cap.sum())
    got_curve = {c["hour"]: c["occupancy"] for c in got["city"]["today_curve"]}
    assert set(got_curve) == set(curve.index)
    for h, v in curve.items():
        assert got_curve[h] == pytest.approx(v)
    # spaces of the programme since 1 January
    year_start = pd.Timestamp(FIXED_NOW).tz_convert(TZ).replace(month=1, day=1).date()
    prog = facilities[facilities.programme.notna() & (pd.to_datetime(facilities.since).dt.date >= year_start)]
    want = prog.groupby("programme").capacity.sum().to_dict()
    assert got["city"]["programme_this_year"] == {k: int(want.get(k, 0)) for k in ("added", "revitalised", "shared")}


def test_no_readings_means_unknown_not_zero(reference_engine):
    got = compute_parking(reference_engine, FIXED_NOW, TZ)
    assert got["city"]["occupancy_now"] is None and got["city"]["facilities"] == 0


def test_enterprise_state_follows_writes(city):
    """New visits, new problems and resolutions reach the in-memory state by watermark."""
    from sqlalchemy import select, update

    from datasource.demo.simulate import Simulator

    inc = IncrementalEnterprise()
    inc(city, FIXED_NOW, TZ)
    sim = Simulator(city, rate=30, seed=4)
    for k in range(1, 6):
        sim.tick(FIXED_NOW + dt.timedelta(seconds=60 * k), 60)
    later = FIXED_NOW + dt.timedelta(seconds=400)
    with city.begin() as conn:  # resolve an old problem: an update, not an insert
        P = schema.EnterpriseProblem
        pid = conn.execute(select(P.id).where(P.status == "open").limit(1)).scalar_one()
        conn.execute(update(P).where(P.id == pid).values(status="resolved", resolved_at=later,
                                                           updated_at=later))
    got = inc(city, later, TZ)
    assert inc.last_changed > 0 and inc.reloads == 1
    assert inc.builds == 1  # the new and changed rows went into the arrays in place
    # the sorted times window_key counts with followed the appends and the resolution
    assert list(inc.raised_sorted) == sorted(inc.p_raised) and list(inc.resolved_sorted) == sorted(inc.p_resolved)
    want = compute_enterprise(city, later, TZ)
    assert got["open_problems"] == want["open_problems"]
    for name in PERIODS:
        for part in ("city", "by_district", "by_type", "by_exclusive_grid"):
            _assert_close(got["periods"][name][part], want["periods"][name][part], f"{name}.{part}")


@pytest.mark.parametrize("bulk", [False, True])
def test_enterprise_visits_inserted_anywhere_in_time(city, bulk, monkeypatch):
    """Visits written into the past (before an enterprise's visits of the period), at the
    same instant as another visit, and exactly on a period's start keep distinct
    enterprises and grid coverage exact, inserted in place or (bulk) by a rebuild."""
    from sqlalchemy import select

    from dashboard.kpis import enterprise_state
    from dashboard.periods import all_periods

    V, E = schema.EnterpriseVisit, schema.Enterprise
    if bulk:
        monkeypatch.setattr(enterprise_state, "INSERT_BUDGET", 0)
    inc = IncrementalEnterprise()
    inc(city, FIXED_NOW, TZ)
    periods = all_periods(FIXED_NOW, TZ)
    with city.connect() as conn:  # enterprises in an exclusive grid that were visited this month
        ents = conn.execute(select(V.enterprise_id, V.district_code).join(E, E.id == V.enterprise_id)
                            .where(E.exclusive_grid_id.is_not(None), V.visited_at >= periods["month"].start)
                            .group_by(V.enterprise_id, V.district_code).order_by(V.enterprise_id).limit(3)).all()
    assert len(ents) == 3
    second = dt.timedelta(seconds=1)
    at = [periods["month"].start + second,  # before this month's visits of the enterprise
          FIXED_NOW - dt.timedelta(hours=1), FIXED_NOW - dt.timedelta(hours=1),  # one instant, twice
          periods["week"].start]  # exactly on a period's start
    who = [ents[0], ents[1], ents[1], ents[2]]
    with city.begin() as conn:
        conn.execute(insert(V), [{"external_id": f"late-{i}", "enterprise_id": e, "district_code": d,
                                  "visited_at": t, "updated_at": FIXED_NOW + second}
                                 for i, ((e, d), t) in enumerate(zip(who, at))])
    later = FIXED_NOW + 2 * second
    got, want = inc(city, later, TZ), compute_enterprise(city, later, TZ)
    assert inc.builds == (2 if bulk else 1)
    for name in PERIODS:
        for part in ("city", "by_district", "by_exclusive_grid"):
            _assert_close(got["periods"][name][part], want["periods"][name][part], f"{name}.{part}")


def test_enterprise_counts_follow_enterprise_changes(city):
    """The poller keeps enterprise counts and grid memberships while the enterprises'
    fingerprint holds; an update (updated_at moves) makes it read them again."""
    from sqlalchemy import select, update

    E = schema.Enterprise
    inc = IncrementalEnterprise()
    inc(city, FIXED_NOW, TZ)
    with city.begin() as conn:
        eid, grid = conn.execute(select(E.id, E.exclusive_grid_id).where(E.exclusive_grid_id.is_not(None))
                                 .order_by(E.id).limit(1)).one()
        conn.execute(update(E).where(E.id == eid).values(
            above_scale=~E.above_scale, exclusive_grid_id=None, updated_at=FIXED_NOW + dt.timedelta(seconds=1)))
    later = FIXED_NOW + dt.timedelta(seconds=2)
    got, want = inc(city, later, TZ), compute_enterprise(city, later, TZ)
    assert got["enterprises"] == want["enterprises"]
    assert got["exclusive_grids"] == want["exclusive_grids"]
    _assert_close(got["periods"]["year"]["by_exclusive_grid"], want["periods"]["year"]["by_exclusive_grid"],
                  "year.by_exclusive_grid")


def test_enterprise_periods_kept_only_while_nothing_they_count_changed(city):
    """A poll reuses a period's block when neither the rows nor the rows inside its
    windows changed; a visit, a problem and a resolution stamped minutes ahead change
    nothing until `now` reaches them, and then the blocks follow, with no write between."""
    from sqlalchemy import select, update

    V, P = schema.EnterpriseVisit, schema.EnterpriseProblem
    inc = IncrementalEnterprise()
    inc(city, FIXED_NOW, TZ)
    second = dt.timedelta(seconds=1)
    t1 = inc(city, FIXED_NOW + second, TZ)
    t2 = inc(city, FIXED_NOW + 2 * second, TZ)
    assert t2["periods"]["year"] is t1["periods"]["year"]  # kept, not recomputed
    with city.connect() as conn:
        ent, district = conn.execute(select(V.enterprise_id, V.district_code).order_by(V.id).limit(1)).one()
    minute = dt.timedelta(minutes=1)
    with city.begin() as conn:
        conn.execute(insert(V).values(external_id="ahead", enterprise_id=ent, district_code=district,
                                      visited_at=FIXED_NOW + minute, updated_at=FIXED_NOW + 3 * second))
        conn.execute(insert(P).values(external_id="ahead", enterprise_id=ent, district_code=district,
                                      problem_type="financing", status="open", raised_at=FIXED_NOW + 2 * minute,
                                      updated_at=FIXED_NOW + 3 * second))
        pid = conn.execute(select(P.id).where(P.status == "open").order_by(P.id).limit(1)).scalar_one()
        conn.execute(update(P).where(P.id == pid).values(status="resolved", resolved_at=FIXED_NOW + 3 * minute,
                                                         updated_at=FIXED_NOW + 3 * second))
    for now in (FIXED_NOW + 4 * second, FIXED_NOW + 5 * second, FIXED_NOW + minute + second,
                FIXED_NOW + 2 * minute + second, FIXED_NOW + 3 * minute + second):
        got, want = inc(city, now, TZ), compute_enterprise(city, now, TZ)
        for name in PERIODS:
            for part in ("city", "by_district", "by_type", "by_exclusive_grid"):
                _assert_close(got["periods"][name][part], want["periods"][name][part], f"{now} {name}.{part}")
    assert got["periods"]["today"]["city"]["problems_raised"]["value"] == \
        t1["periods"]["today"]["city"]["problems_raised"]["value"] + 1


def test_enterprise_window_stats_outlive_changes_elsewhere(city):
    """A visit now changes the current windows only: every previous window's stats are
    reused as they were (the same objects), and the result still equals the full SQL."""
    from sqlalchemy import select

    from dashboard.kpis.enterprise import WINDOWS

    V = schema.EnterpriseVisit
    inc = IncrementalEnterprise()
    inc(city, FIXED_NOW, TZ)
    before = dict(inc.memo[WINDOWS])
    with city.connect() as conn:
        ent, district = conn.execute(select(V.enterprise_id, V.district_code).order_by(V.id).limit(1)).one()
    with city.begin() as conn:
        conn.execute(insert(V).values(external_id="now", enterprise_id=ent, district_code=district,
                                      visited_at=FIXED_NOW, updated_at=FIXED_NOW))
    later = FIXED_NOW + dt.timedelta(seconds=2)
    got = inc(city, later, TZ)
    after = inc.memo[WINDOWS]
    kept = [k for k, v in after.items() if before.get(k) is v]
    assert len(kept) == len(PERIODS)  # the previous windows; the current ones hold the visit
    assert len(after) == 2 * len(PERIODS) and inc.builds == 1
    want = compute_enterprise(city, later, TZ)
    for name in PERIODS:
        for part in ("city", "by_district", "by_type", "by_exclusive_grid"):
            _assert_close(got["periods"][name][part], want["periods"][name][part], f"{name}.{part}")


def test_enterprise_state_equals_sql_through_random_writes(city):
    """Random visits (in time order, late, at one instant with another, moved), new
    problems (now and in the past), resolutions and reopenings, with `now` moving within
    hours, across them and across local midnight: after every step the in-memory state,
    with its kept windows and hour heads, answers exactly what the full SQL answers."""
    import random

    from sqlalchemy import select, update

    V, P = schema.EnterpriseVisit, schema.EnterpriseProblem
    rng = random.Random(11)
    with city.connect() as conn:
        ents = conn.execute(select(schema.Enterprise.id, schema.Enterprise.district_code)
                            .order_by(schema.Enterprise.id)).all()
    inc = IncrementalEnterprise()
    now = FIXED_NOW
    inc(city, now, TZ)
    steps = [dt.timedelta(minutes=rng.choice([1, 7, 20, 45])) for _ in range(14)]
    steps[9] = dt.timedelta(hours=13)  # past local midnight
    for k, step in enumerate(steps):
        with city.begin() as conn:
            for j in range(rng.randint(1, 4)):
                ent, district = rng.choice(ents)
                tag, op = f"r{k}-{j}", rng.random()
                if op < 0.35:  # a visit now or a few minutes late, often to an enterprise seen lately
                    at = now - dt.timedelta(seconds=rng.choice([0, 0, 30, 300]))
                    if rng.random() < 0.6:
                        ent, district = rng.choice(conn.execute(
                            select(V.enterprise_id, V.district_code)
                            .where(V.visited_at >= now - dt.timedelta(days=rng.choice([1, 10, 60])))).all())
                    conn.execute(insert(V).values(external_id=tag, enterprise_id=ent, district_code=district,
                                                  visited_at=at, updated_at=now))
                elif op < 0.5:  # long after the fact, or at the instant of another visit
                    other = conn.execute(select(V.visited_at, V.enterprise_id, V.district_code)
                                         .order_by(V.id).offset(rng.randrange(100)).limit(1)).one()
                    at = other[0] if rng.random() < 0.5 else now - dt.timedelta(days=rng.uniform(0, 400))
                    conn.execute(insert(V).values(external_id=tag, enterprise_id=other[1],
                                                  district_code=other[2], visited_at=at, updated_at=now))
                elif op < 0.65:  # a problem raised now or earlier, sometimes resolved already
                    raised = now - dt.timedelta(days=rng.choice([0, 0, 3, 40, 200]))
                    resolved = now if rng.random() < 0.3 else None
                    conn.execute(insert(P).values(
                        external_id=tag, enterprise_id=ent, district_code=district,
                        problem_type=rng.choice(schema.PROBLEM_TYPES), status="resolved" if resolved else "open",
                        raised_at=raised, resolved_at=resolved, updated_at=now))
                elif op < 0.85:  # a resolution, or a reopening
                    status = rng.choice(["open", "resolved"])
                    since = now - dt.timedelta(days=rng.choice([2, 30, 3000]))  # this week's, month's, any
                    pid = rng.choice(conn.execute(select(P.id).where(P.status == status, P.raised_at >= since)
                                                  .order_by(P.id)).scalars().all())
                    conn.execute(update(P).where(P.id == pid).values(
                        status="resolved" if status == "open" else "open",
                        resolved_at=now if status == "open" else None, updated_at=now))
                else:  # a visit moved in time (the arrays are built again)
                    vid = conn.execute(select(V.id).order_by(V.id).offset(rng.randrange(200)).limit(1)).scalar_one()
                    conn.execute(update(V).where(V.id == vid).values(
                        visited_at=now - dt.timedelta(hours=rng.uniform(0, 48)), updated_at=now))
        now += step
        got, want = inc(city, now, TZ), compute_enterprise(city, now, TZ)
        assert got["open_problems"] == want["open_problems"], k
        for name in PERIODS:
            for part in ("city", "by_district", "by_type", "by_exclusive_grid"):
                _assert_close(got["periods"][name][part], want["periods"][name][part], f"{k} {now} {name}.{part}")
    assert inc.reloads == 1 and 1 < inc.builds < len(steps)  # mostly kept up in place


def _assert_close(a, b, path):
    """Equal, floats within a millionth (SQLite's julianday() rounds durations to ~1 ms)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6), path
    else:
        assert a == b, path


def test_parking_curve_cache_follows_new_and_late_readings(city):
    """The poller's parking section equals the full computation after new readings, a late
    reading for an hour already cached, and a capacity change."""
    from sqlalchemy import select, update

    from dashboard.kpis.parking import IncrementalParking

    R, F = schema.OccupancyReading, schema.ParkingFacility
    inc = IncrementalParking()
    t1 = FIXED_NOW + dt.timedelta(minutes=20)
    assert inc(city, t1, TZ) == compute_parking(city, t1, TZ)
    with city.connect() as conn:
        fids = conn.execute(select(F.id).where(F.kind != "non_motor").limit(3)).scalars().all()
    t2 = FIXED_NOW + dt.timedelta(minutes=50)
    with city.begin() as conn:
        conn.execute(insert(R), [  # a fresh reading, and a late one for 09:10 local, an hour already cached
            {"facility_id": fids[0], "observed_at": t2 - dt.timedelta(minutes=1), "occupied": 7, "received_at": t2},
            {"facility_id": fids[1], "observed_at": FIXED_NOW - dt.timedelta(hours=2, minutes=50),
             "occupied": 3, "received_at": t2}])
    assert inc(city, t2, TZ) == compute_parking(city, t2, TZ)
    with city.begin() as conn:
        conn.execute(update(F).where(F.id == fids[2]).values(capacity=5, updated_at=t2))
    t3 = t2 + dt.timedelta(minutes=5)
    assert inc(city, t3, TZ) == compute_parking(city, t3, TZ)


@pytest.fixture
def parking_city(backend, request, tmp_path):
    """The demo city's facilities and a day of readings, with few cases (parking ignores them)."""
    return seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=5, now=FIXED_NOW, total_cases=500,
                         occupancy_days=1)


def _motor_ids(engine, n):
    from sqlalchemy import select
    F = schema.ParkingFacility
    with engine.connect() as conn:
        return conn.execute(select(F.id).where(F.kind != "non_motor").order_by(F.id).limit(n)).scalars().all()


def test_parking_state_follows_ahead_rewritten_late_and_ageing_readings(parking_city):
    """IncrementalParking equals the full computation through readings stamped ahead of
    now, a reading rewritten by an import, a late commit inside the overlap, facilities
    ageing out of "occupied now", a new day and a clock set back."""
    from sqlalchemy import update

    from dashboard.kpis.parking import IncrementalParking

    engine, R = parking_city, schema.OccupancyReading
    inc = IncrementalParking()
    f = _motor_ids(engine, 3)

    def check(now):
        _assert_close(inc(engine, now, TZ), compute_parking(engine, now, TZ), str(now))

    t = FIXED_NOW + dt.timedelta(minutes=10)
    check(t)
    with engine.begin() as conn:  # a sensor whose clock runs 8 minutes fast
        conn.execute(insert(R), [{"facility_id": f[0], "observed_at": t + dt.timedelta(minutes=8),
                                  "occupied": 11, "received_at": t}])
    check(t + dt.timedelta(seconds=1))   # not yet: beyond now + the clock skew allowed
    check(t + dt.timedelta(minutes=4))   # now it counts, in the curve and in "occupied now"
    with engine.begin() as conn:  # an import replaces that count (received_at moves)
        conn.execute(update(R).where(R.facility_id == f[0], R.observed_at == t + dt.timedelta(minutes=8))
                     .values(occupied=99, received_at=t + dt.timedelta(minutes=5)))
    check(t + dt.timedelta(minutes=5))
    with engine.begin() as conn:  # committed late: stamped before the newest reading seen
        conn.execute(insert(R), [{"facility_id": f[1], "observed_at": t + dt.timedelta(minutes=1),
                                  "occupied": -4, "received_at": t + dt.timedelta(minutes=4, seconds=50)}])
    check(t + dt.timedelta(minutes=5, seconds=5))
    check(t + dt.timedelta(hours=2))  # the seeded readings have aged out, the new ones not yet
    assert inc.resets == 1
    check(FIXED_NOW + dt.timedelta(hours=13))  # 01:00 the next day in Shanghai: a new curve
    assert inc.resets == 2
    check(t + dt.timedelta(hours=3))  # a clock set back: start again rather than trust the state
    assert inc.resets == 3


def test_parking_poll_reads_only_what_a_new_reading_touched(parking_city):
    """A poll with no new reading reads no readings and no curve hour; a new reading makes
    the next poll read its hour again."""
    from sqlalchemy import event

    from dashboard.kpis.parking import IncrementalParking

    engine, R = parking_city, schema.OccupancyReading
    statements = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql))
    inc = IncrementalParking()
    t = FIXED_NOW + dt.timedelta(minutes=10)
    inc(engine, t, TZ)
    inc(engine, t + dt.timedelta(seconds=5), TZ)  # reads the overlap once (nothing seen yet)
    statements.clear()
    inc(engine, t + dt.timedelta(seconds=10), TZ)
    # the curve's query is the poll's only one that reads occupancy_hourly (older hours)
    assert not any("occupancy_hourly" in s.lower() for s in statements)  # no curve hour read again
    assert len(statements) == 3, statements  # facilities fingerprint, stamps per received_at, districts
    with engine.begin() as conn:
        conn.execute(insert(R), [{"facility_id": _motor_ids(engine, 1)[0], "occupied": 5,
                                  "observed_at": t, "received_at": t + dt.timedelta(seconds=12)}])
    statements.clear()
    now = t + dt.timedelta(seconds=15)
    got = inc(engine, now, TZ)
    assert any("occupancy_hourly" in s.lower() for s in statements)
    _assert_close(got, compute_parking(engine, now, TZ), "after a new reading")
