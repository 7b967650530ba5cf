"""The live simulator moves the city forward: reports, lifecycle moves, visits, occupancy."""
import datetime as dt

import pytest
from sqlalchemy import func, select

from datasource import schema
from datasource.demo.simulate import Simulator
from tests.conftest import BACKLOG, FIXED_NOW, seeded_engine

C, E = schema.Case, schema.CaseEvent


@pytest.fixture
def city(backend, request, tmp_path):
    return seeded_engine(backend, request, tmp_path, profile=BACKLOG, seed=5, now=FIXED_NOW, total_cases=3000,
                         occupancy_days=1)


def _counts(engine):
    with engine.connect() as conn:
        return {
            "cases": conn.execute(select(func.count()).select_from(C)).scalar_one(),
            "events": conn.execute(select(func.count()).select_from(E)).scalar_one(),
            "visits": conn.execute(select(func.count()).select_from(schema.EnterpriseVisit)).scalar_one(),
            "readings": conn.execute(select(func.count()).select_from(schema.OccupancyReading)).scalar_one(),
            "closed": conn.execute(select(func.count()).where(C.status == "closed")).scalar_one(),
        }


def test_ticks_report_move_and_read(city):
    sim = Simulator(city, rate=5, occupancy_seconds=60, seed=1)
    before = _counts(city)
    reports = [sim.tick(FIXED_NOW + dt.timedelta(seconds=30 * k), 30) for k in range(1, 21)]
    after = _counts(city)
    reported = sum(r.reported for r in reports)
    assert reported > 0 and after["cases"] == before["cases"] + reported
    assert sum(r.moved for r in reports) > 0
    assert after["events"] == before["events"] + reported + sum(r.moved for r in reports)
    assert after["closed"] > before["closed"]
    assert after["visits"] > before["visits"]
    facilities = sum(1 for _ in sim.facilities)
    assert after["readings"] - before["readings"] > facilities  # at least two rounds (some gaps)
    # the store says when things changed: updated_at follows the simulated clock
    with city.connect() as conn:
        newest = conn.execute(select(func.max(C.updated_at))).scalar_one()
    assert newest > FIXED_NOW


def test_moves_follow_the_lifecycle(city):
    sim = Simulator(city, rate=8, seed=2)
    t0 = FIXED_NOW + dt.timedelta(seconds=1)
    for k in range(1, 31):
        sim.tick(t0 + dt.timedelta(seconds=20 * k), 20)
    allowed = {(None, "reported"), ("reported", "filed"), ("reported", "voided"),
               ("filed", "dispatched"), ("dispatched", "handled"), ("rework", "handled"),
               ("handled", "verified"), ("handled", "rework"), ("verified", "closed")}
    with city.connect() as conn:
        moves = set(conn.execute(select(E.from_status, E.to_status).where(E.at > FIXED_NOW).distinct()).all())
        # each simulated case's status is the target of its newest event
        sim_cases = conn.execute(select(C.id, C.status).where(C.reported_at > FIXED_NOW)).all()
        last = dict(conn.execute(select(E.case_id, E.to_status).where(
            E.id.in_(select(func.max(E.id)).group_by(E.case_id)))).all())
        closed = conn.execute(select(C).where(C.reported_at > FIXED_NOW, C.status == "closed")).all()
    assert moves <= allowed
    assert sim_cases and all(last[i] == s for i, s in sim_cases)
    for c in closed:
        assert c.reported_at <= c.filed_at <= c.dispatched_at <= c.handled_at <= c.verified_at <= c.closed_at


def test_simulator_needs_a_city(engine):
    with pytest.raises(RuntimeError, match="seed"):
        Simulator(engine)


def test_moves_can_be_capped_whatever_the_backlog(city):
    """Benchmarks give stores of every size the same writes: with a cap, a tick moves about
    cap x seconds cases, however many recent open cases could move."""
    now = FIXED_NOW + dt.timedelta(seconds=1)
    backlog = Simulator(city, rate=10, seed=3).tick(now, 60).reported  # ~600 new reports
    capped = Simulator(city, rate=0.001, seed=4, moves_per_second=0.1)
    capped_moves = [capped.tick(now + dt.timedelta(seconds=60 * k), 60).moved for k in (1, 2)]
    uncapped = Simulator(city, rate=0.001, seed=5).tick(now + dt.timedelta(seconds=180), 60).moved
    assert backlog > 300
    assert max(capped_moves) <= 20 and sum(capped_moves) > 0  # Poisson(6) a tick
    assert uncapped > 200  # without the cap, the backlog moves at once
