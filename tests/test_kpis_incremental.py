"""Incremental rollups equal a full recompute after any sequence of writes."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update

from dashboard.kpis.cases import compute_cases
from dashboard.kpis.incremental import IncrementalCases
from datasource import kpi_state, schema
from datasource.demo.simulate import Simulator
from tests.conftest import BACKLOG, FIXED_NOW, seeded_engine
from tests.kpi_oracle import assert_close

TZ = ZoneInfo("Asia/Shanghai")
C = schema.Case
DISTRICTS = ["410102", "410103", "410104", "410105", "410108", "410171", "410172", "410190"]


@pytest.fixture
def small_city(backend, request, tmp_path):
    engine = seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=13, now=FIXED_NOW - dt.timedelta(hours=2),
                           total_cases=1500, occupancy_days=1)
    return {"engine": engine, "clock": [0], "inc": IncrementalCases()}


def _tick(ctx) -> dt.datetime:
    ctx["clock"][0] += 1
    return FIXED_NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=ctx["clock"][0])


offsets = st.one_of(st.none(), st.floats(min_value=0, max_value=400 * 3600))
insert_op = st.fixed_dictionaries({
    "op": st.just("insert"), "district": st.sampled_from(DISTRICTS),
    "age_h": st.floats(min_value=0.01, max_value=400 * 24), "file": offsets, "handle": offsets,
    "close": offsets, "voided": st.booleans(), "rework": st.integers(0, 2), "extended": st.booleans(),
    "limit_h": st.floats(min_value=1, max_value=200)})
update_op = st.fixed_dictionaries({
    "op": st.just("update"), "pick": st.integers(min_value=0),
    "field": st.sampled_from(["close", "reopen", "handle", "district", "void", "rework", "extend",
                              "deadline", "unfile", "status", "category"]),
    "status": st.sampled_from(list(schema.CASE_STATUSES)),
    "category": st.sampled_from(["S01-01", "S05-03", "B02-01"]),
    "value": st.floats(min_value=0, max_value=500 * 3600), "district": st.sampled_from(DISTRICTS)})


def _apply_op(ctx, op, n):
    engine = ctx["engine"]
    stamp = _tick(ctx)
    with engine.begin() as conn:
        if op["op"] == "insert":
            rep = FIXED_NOW - dt.timedelta(hours=op["age_h"])
            filed = rep + dt.timedelta(seconds=op["file"]) if op["file"] is not None else None
            handled = filed + dt.timedelta(seconds=op["handle"]) if filed and op["handle"] is not None else None
            closed = handled + dt.timedelta(seconds=op["close"]) if handled and op["close"] is not None else None
            conn.execute(insert(C).values(
                external_id=f"P-{stamp.timestamp()}-{n}", source="app", category_code="S01-01",
                district_code=op["district"], status="closed" if closed else "filed",
                reported_at=rep, filed_at=filed, handled_at=handled, closed_at=closed,
                deadline_at=filed + dt.timedelta(hours=op["limit_h"]) if filed else None,
                rework_count=op["rework"], extended=op["extended"], voided=op["voided"], updated_at=stamp))
            return
        ids = conn.execute(select(C.id).order_by(C.id)).scalars().all()
        case_id = ids[op["pick"] % len(ids)]
        row = conn.execute(select(C).where(C.id == case_id)).one()
        base = row.filed_at or row.reported_at
        values = {
            "close": {"closed_at": base + dt.timedelta(seconds=op["value"]), "status": "closed"},
            "reopen": {"closed_at": None, "status": "dispatched"},
            "handle": {"handled_at": base + dt.timedelta(seconds=op["value"])},
            "district": {"district_code": op["district"]},
            "void": {"voided": not row.voided},
            "rework": {"rework_count": (row.rework_count or 0) + 1},
            "extend": {"extended": not row.extended},
            "deadline": {"deadline_at": base + dt.timedelta(seconds=op["value"])},
            "unfile": {"filed_at": None},
            "status": {"status": op["status"]},
            "category": {"category_code": op["category"]},
        }[op["field"]]
        conn.execute(update(C).where(C.id == case_id).values(updated_at=stamp, **values))


@pytest.mark.parametrize("save_every", [0, 3600], ids=["saves-every-poll", "saves-later"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(insert_op, update_op), min_size=1, max_size=25))
def test_incremental_equals_full_recompute(small_city, save_every, ops):
    """Saving every poll, or holding changes in memory (the store keeps an older state
    that a new poller reads the changes since against)."""
    engine, inc = small_city["engine"], small_city.setdefault(save_every, IncrementalCases(save_every=save_every))
    inc.refresh(engine, FIXED_NOW, TZ)  # state as it stands before this example's writes
    for i, op in enumerate(ops):
        _apply_op(small_city, op, i)
        if i % 7 == 0:  # sometimes poll in the middle of a burst
            inc.refresh(engine, FIXED_NOW, TZ)
    for now in (FIXED_NOW, FIXED_NOW + dt.timedelta(seconds=1037)):  # on and off the hour
        want = compute_cases(engine, now, TZ)
        assert_close(inc(engine, now, TZ), want)
        # a fresh poller (a new leader) picks the saved state up and agrees too
        assert_close(IncrementalCases()(engine, now, TZ), want)


def test_a_poll_reads_only_what_changed(small_city):
    engine, inc = small_city["engine"], small_city["inc"]
    inc.refresh(engine, FIXED_NOW, TZ)
    assert inc.rebuilds == 1
    # nothing written: nothing changed (the overlap re-reads, but finds no difference)
    assert inc.refresh(engine, FIXED_NOW, TZ) == 0
    sim = Simulator(engine, rate=5, seed=3)
    for k in range(5):
        sim.tick(FIXED_NOW + dt.timedelta(seconds=40 * (k + 1)), 40)
    changed = inc.refresh(engine, FIXED_NOW + dt.timedelta(seconds=200), TZ)
    with engine.connect() as conn:
        touched = conn.execute(select(func.count()).where(C.updated_at > FIXED_NOW)).scalar_one()
    assert 0 < changed <= touched
    assert inc.rebuilds == 1
    now = FIXED_NOW + dt.timedelta(seconds=200)
    assert_close(inc(engine, now, TZ), compute_cases(engine, now, TZ))


def test_deleted_cases_are_caught_by_the_periodic_check(small_city):
    engine = small_city["engine"]
    inc = IncrementalCases(verify_every=0)
    inc.refresh(engine, FIXED_NOW, TZ)
    with engine.begin() as conn:
        victim = conn.execute(select(C.id).limit(1)).scalar_one()
        conn.execute(delete(schema.CaseEvent).where(schema.CaseEvent.case_id == victim))
        conn.execute(delete(C).where(C.id == victim))
    inc.refresh(engine, FIXED_NOW, TZ)
    assert inc.rebuilds == 2
    assert kpi_state.counts(engine)[0] == kpi_state.counts(engine)[1]
    assert_close(inc(engine, FIXED_NOW, TZ), compute_cases(engine, FIXED_NOW, TZ))


def test_overdue_ageing_at_bucket_boundaries(small_city):
    """Deadlines just either side of each ageing boundary, in the part-hours that the
    hourly histogram cannot split: the incremental count must still equal the full one."""
    engine = small_city["engine"]
    now = FIXED_NOW + dt.timedelta(minutes=17, seconds=23)
    rows = []
    for i, edge_h in enumerate((0, 24, 72, 168, 720)):
        for j, shift in enumerate((-90, -1, 1, 90)):  # seconds either side of the boundary
            deadline = now - dt.timedelta(hours=edge_h) + dt.timedelta(seconds=shift)
            rows.append(dict(external_id=f"B-{i}-{j}", source="app", category_code="S01-01",
                             district_code=DISTRICTS[(i + j) % 8], status="dispatched",
                             reported_at=deadline - dt.timedelta(hours=3), filed_at=deadline - dt.timedelta(hours=2),
                             deadline_at=deadline, updated_at=_tick(small_city)))
    inc = IncrementalCases()
    inc.refresh(engine, now, TZ)
    with engine.begin() as conn:
        conn.execute(insert(C), rows)
    got = inc(engine, now, TZ)
    want = compute_cases(engine, now, TZ)
    assert_close(got, want)
    assert sum(b["n"] for b in got["overdue"]["ageing"]) == got["overdue"]["total"]


def _case(ctx, n, district, status="dispatched", **times):
    times = {f: times.get(f) for f in ("reported_at", "filed_at", "handled_at", "closed_at", "deadline_at")}
    return dict(external_id=f"E-{n}-{ctx['clock'][0]}", source="app", category_code="S01-01",
                district_code=district, status=status, updated_at=_tick(ctx), **times)


def test_part_hours_follow_writes_inside_the_hours_they_hold(small_city):
    """Cases written inside the part-hours counted from memory (the end of each previous
    period, the overdue ageing boundaries): inserted, closed, voided, moved within their
    hour (the hourly contribution does not change), moved in from outside. Between polls
    of the same hour, and after the hour moves on, the KPIs equal a full recompute."""
    from dashboard.kpis.cases import OVERDUE_EDGES_H
    from dashboard.periods import all_periods, floor_hour

    engine = small_city["engine"]
    now = FIXED_NOW + dt.timedelta(minutes=17, seconds=23)
    inc = IncrementalCases()
    assert_close(inc(engine, now, TZ), compute_cases(engine, now, TZ))
    edges = sorted({(floor_hour(p.prev_end), p.prev_end) for p in all_periods(now, TZ).values()
                    if floor_hour(p.prev_end) < p.prev_end})
    assert len(edges) >= 3
    minute = dt.timedelta(minutes=1)
    rows = []
    for i, (h, end) in enumerate(edges):
        d = DISTRICTS[i % 8]
        rows += [
            _case(small_city, f"a{i}", d, reported_at=h + minute, filed_at=h + 2 * minute,
                  deadline_at=h + dt.timedelta(hours=30)),
            _case(small_city, f"b{i}", d, reported_at=end + dt.timedelta(seconds=1)),  # after the edge
            _case(small_city, f"c{i}", DISTRICTS[(i + 3) % 8], status="closed", reported_at=h - 2 * 60 * minute,
                  filed_at=h + 5 * minute, handled_at=h + 8 * minute, closed_at=h + 10 * minute,
                  deadline_at=h + 9 * minute)]
    for j, age in enumerate(OVERDUE_EDGES_H):  # running cases due just inside each boundary hour
        due = floor_hour(now - dt.timedelta(hours=age)) + dt.timedelta(minutes=10 + j)
        rows.append(_case(small_city, f"o{j}", DISTRICTS[j], reported_at=due - 60 * minute,
                          filed_at=due - 50 * minute, deadline_at=due))
    with engine.begin() as conn:
        conn.execute(insert(C), rows)
    later = now + dt.timedelta(seconds=5)
    assert_close(inc(engine, later, TZ), compute_cases(engine, later, TZ))
    loads = inc.part_hours.loads

    with engine.begin() as conn:
        for i, (h, end) in enumerate(edges):
            ids = {r: conn.execute(select(C.id).where(C.external_id.like(f"E-{r}{i}-%"))).scalar_one()
                   for r in "abc"}
            conn.execute(update(C).where(C.id == ids["a"]).values(  # closed: its cohort changes
                status="closed", handled_at=h + 20 * minute, closed_at=h + 21 * minute, updated_at=_tick(small_city)))
            conn.execute(update(C).where(C.id == ids["c"]).values(voided=True, updated_at=_tick(small_city)))
            conn.execute(update(C).where(C.id == ids["b"]).values(  # same hour, out of the next edge
                reported_at=h + 59 * minute, updated_at=_tick(small_city)))
            outsider = conn.execute(select(C.id).where(  # filed in no held hour
                C.voided.is_(False), C.filed_at.between(now - dt.timedelta(days=20), now - dt.timedelta(days=10)))
                .order_by(C.id).offset(i).limit(1)).scalar_one()
            conn.execute(update(C).where(C.id == outsider).values(  # moved into the edge hour
                filed_at=h + 4 * minute, updated_at=_tick(small_city)))
        for j in range(len(OVERDUE_EDGES_H)):  # half stop running, half are due a minute later
            oid, due = conn.execute(select(C.id, C.deadline_at).where(C.external_id.like(f"E-o{j}-%"))).one()
            values = {"status": "parked"} if j % 2 else {"deadline_at": due + minute}
            conn.execute(update(C).where(C.id == oid).values(updated_at=_tick(small_city), **values))
    later = now + dt.timedelta(minutes=30)
    assert_close(inc(engine, later, TZ), compute_cases(engine, later, TZ))
    assert inc.part_hours.loads == loads  # same hours: nothing read again
    next_hour = now + dt.timedelta(minutes=50)
    assert_close(inc(engine, next_hour, TZ), compute_cases(engine, next_hour, TZ))
    assert inc.part_hours.loads == loads + 1


def test_a_poll_with_nothing_written_runs_one_statement(small_city):
    """Nothing written since the last poll: the cases section asks the store one small
    question (the overlap's stamps) and computes the rest from memory."""
    from sqlalchemy import event

    engine, inc = small_city["engine"], small_city["inc"]
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    inc(engine, now + dt.timedelta(seconds=5), TZ)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql))
    got = inc(engine, now + dt.timedelta(seconds=10), TZ)
    assert len(statements) == 1 and "GROUP BY" in statements[0], statements
    assert_close(got, compute_cases(engine, now + dt.timedelta(seconds=10), TZ))


def test_a_late_commit_inside_the_overlap_is_read(small_city):
    """A write stamped before the newest one already read (its transaction committed
    late) changes the overlap's stamps, so the next poll reads it."""
    engine, inc = small_city["engine"], small_city["inc"]
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    with engine.begin() as conn:
        conn.execute(insert(C), [_case(small_city, "x", DISTRICTS[0], reported_at=now - dt.timedelta(minutes=5))])
    inc(engine, now, TZ)
    late = inc.watermark - dt.timedelta(seconds=10)
    with engine.begin() as conn:
        victim = conn.execute(select(C.id).where(C.closed_at.is_(None)).order_by(C.id).limit(1)).scalar_one()
        conn.execute(update(C).where(C.id == victim).values(
            status="closed", closed_at=now - dt.timedelta(minutes=1), updated_at=late))
    assert inc.refresh(engine, now, TZ) == 1
    assert_close(inc(engine, now, TZ), compute_cases(engine, now, TZ))


def test_overlap_finds_the_first_stamp_that_differs():
    """The per-stamp comparison behind the overlap re-read: rows moved on by writes read
    since leave their old stamp, a late commit shows, and forgotten stamps are ignored."""
    from dashboard.kpis.common import Overlap

    t = [FIXED_NOW + dt.timedelta(seconds=s) for s in range(6)]
    seen = Overlap()
    for key, stamp in ((1, t[1]), (2, t[1]), (3, t[2])):
        seen.add(key, stamp)
    assert seen.first_unseen([(t[1], 2, 3), (t[2], 1, 3)], until=t[2]) is None
    assert seen.first_unseen([(t[1], 2, 3), (t[2], 1, 3), (t[4], 1, 9)], until=t[2]) is None  # past it: read anyway
    assert seen.first_unseen([(t[1], 2, 3), (t[2], 2, 12)], until=t[2]) == t[2]  # case 9 committed late at t2
    seen.add(2, t[4])  # case 2 written again, read past the watermark: it left t1
    assert seen.seen(2, t[4]) and not seen.seen(2, t[1])
    assert seen.first_unseen([(t[1], 1, 1), (t[2], 1, 3), (t[4], 1, 2)], until=t[2]) is None
    assert seen.first_unseen([(t[1], 1, 5), (t[2], 1, 3), (t[4], 1, 2)], until=t[2]) == t[1]  # 1 left, 5 came
    seen.forget_until(t[1])  # t1 left the overlap: the store no longer reports it
    assert seen.first_unseen([(t[2], 1, 3)], until=t[2]) is None


def test_a_failed_save_loads_the_state_again(small_city, monkeypatch):
    """A poll that applied changes in memory but could not save them must not leave
    memory ahead of the store: the next poll loads the state again and agrees."""
    engine, inc = small_city["engine"], IncrementalCases(save_every=0)
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    with engine.begin() as conn:
        victim = conn.execute(select(C.id).where(C.closed_at.is_(None), C.filed_at.is_not(None))
                              .order_by(C.id).limit(1)).scalar_one()
        conn.execute(update(C).where(C.id == victim).values(
            status="closed", handled_at=now - dt.timedelta(minutes=3), closed_at=now - dt.timedelta(minutes=2),
            updated_at=_tick(small_city)))

    def broken(*args, **kwargs):
        raise RuntimeError("the store went away")
    monkeypatch.setattr(kpi_state, "save", broken)
    with pytest.raises(RuntimeError):
        inc(engine, now, TZ)
    monkeypatch.undo()
    with engine.begin() as conn:  # the same case moves on again
        conn.execute(update(C).where(C.id == victim).values(status="dispatched", closed_at=None,
                                                            updated_at=_tick(small_city)))
    assert_close(inc(engine, now, TZ), compute_cases(engine, now, TZ))


def test_a_new_poller_reads_the_stored_rollups(small_city):
    """A new poller (a leader taking over) reads kpi_rollup and kpi_open instead of
    aggregating the state of every case, and agrees with a full recompute."""
    from sqlalchemy import event

    engine, inc = small_city["engine"], IncrementalCases(save_every=0)
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    sim = Simulator(engine, rate=5, seed=3)
    for k in range(3):
        sim.tick(FIXED_NOW + dt.timedelta(seconds=40 * (k + 1)), 40)
        inc(engine, now, TZ)
    statements = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql))
    fresh = IncrementalCases()
    got = fresh(engine, now, TZ)
    assert fresh.rebuilds == 0
    assert not any("FROM kpi_case_state" in s and "GROUP BY" in s for s in statements)
    assert_close(got, compute_cases(engine, now, TZ))


def test_rollups_not_kept_by_the_last_save_are_rebuilt(small_city):
    """State saved without the rollups (a store migrated from before them, or a poller
    of that version still leading): the next poller to load builds them again. Such a
    poller is also of an older state version (kpi_state.STATE_VERSION: it leaves the
    version stamp behind its watermark), so the whole state is rebuilt."""
    engine, inc = small_city["engine"], small_city["inc"]
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    with engine.begin() as conn:  # as an older poller would leave it: state moved on, rollups not
        conn.execute(delete(schema.KpiRollup))
        conn.execute(update(schema.KpiMeta).where(schema.KpiMeta.key == kpi_state.WATERMARK)
                     .values(value=(inc.watermark + dt.timedelta(seconds=1)).isoformat()))
    assert not kpi_state.rollups_current(engine) and not kpi_state.state_current(engine)
    fresh = IncrementalCases()
    assert_close(fresh(engine, now, TZ), compute_cases(engine, now, TZ))
    assert fresh.rebuilds == 1 and kpi_state.rollups_current(engine) and kpi_state.state_current(engine)


def test_the_store_holds_an_older_whole_state_between_saves(small_city):
    """Between saves the store lags behind memory, all of a piece: a new poller loading
    it reads the changes since again and agrees; the save brings the store level."""
    engine = small_city["engine"]
    inc = IncrementalCases(save_every=3600, verify_every=3600)
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    saved = kpi_state.watermark(engine)
    sim = Simulator(engine, rate=5, seed=3)
    for k in range(3):
        sim.tick(FIXED_NOW + dt.timedelta(seconds=40 * (k + 1)), 40)
        inc(engine, now, TZ)
    assert kpi_state.watermark(engine) == saved < inc.watermark  # nothing written yet
    want = compute_cases(engine, now, TZ)
    assert_close(inc(engine, now, TZ), want)
    assert_close(IncrementalCases()(engine, now, TZ), want)  # a new leader, from the older state
    inc.save_every = 0
    inc(engine, now, TZ)
    assert kpi_state.watermark(engine) == inc.watermark and kpi_state.rollups_current(engine)
    assert_close(IncrementalCases()(engine, now, TZ), want)


def test_new_cases_do_not_look_like_missing_state(small_city):
    """The periodic check compares the cases with the state the store holds: cases still
    in memory, and cases written since the last read, must not look like missing state
    (each check would rebuild the state: 40 s at 10M cases)."""
    engine = small_city["engine"]
    inc = IncrementalCases(save_every=3600, verify_every=0)
    now = FIXED_NOW + dt.timedelta(minutes=17)
    inc(engine, now, TZ)
    with engine.begin() as conn:
        conn.execute(insert(C), [_case(small_city, f"n{i}", DISTRICTS[i], reported_at=now) for i in range(3)])
    inc(engine, now, TZ)  # the check sees cases not read yet; then the poll holds them in memory
    with engine.begin() as conn:
        conn.execute(insert(C), [_case(small_city, "m", DISTRICTS[0], reported_at=now)])
    inc(engine, now, TZ)  # the check: saves, then counts, with one more case not read yet
    assert inc.rebuilds == 1
    assert_close(inc(engine, now, TZ), compute_cases(engine, now, TZ))
