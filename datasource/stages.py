"""A case's lifecycle stage, now and at a past instant: one definition for the live KPIs
(kpi_state.py, kpi_queries.py), browsing (browse_queries.py) and the weekly report
(weekly_queries.py), and which stages a city records at all. docs/kpis.md ("Stages").

The stage **now** is the case's status, except that a voided case is `voided` and a case
with a closing time is `closed`, whatever its status says. A status needs no time of
its own: a city's "In Progress" mapped onto `dispatched` is the stage `dispatched` even
without a `dispatched_at`.

The stage **at a past instant T**:
- voided: `voided` (the store keeps no void time, so a voided case is never open);
- closed before T: `closed`;
- nothing recorded at or after T (every lifecycle time before T and, with `events`, no
  case event at or after T): the case stood at T as it stands now, its stage now;
- otherwise what the case had reached by T: the newest case event before T whose status
  is an open one (with `events`), else its lifecycle times before T (verified, handled,
  dispatched, filed), else `reported`.
So at any T after a case's last recorded time the stage at T is the stage now, and the
weekly report of a week that has just ended agrees with the wall.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, and_, case, exists, func, literal, or_, select

from datasource.schema import OPEN_STATUSES, Case, CaseEvent

# the lifecycle steps that have a time column, in order
STAGE_TIMES = (("filed", "filed_at"), ("dispatched", "dispatched_at"), ("handled", "handled_at"),
               ("verified", "verified_at"), ("closed", "closed_at"))
STAGES_WITH_TIME = tuple(s for s, _ in STAGE_TIMES)
LIFECYCLE_TIMES = ("reported_at",) + tuple(c for _, c in STAGE_TIMES)
# what a city may not record at all: those stages' times, and deadlines
RECORDABLE = STAGE_TIMES + (("deadline", "deadline_at"),)
INPUTS = tuple(s for s, _ in RECORDABLE)


def stage_now():
    """The stage of a case now (an SQL expression over `cases`)."""
    return case((Case.voided.is_(True), "voided"), (Case.closed_at.is_not(None), "closed"), else_=Case.status)


def status_holds():
    """Beside a status among the open ones: what makes it the stage now (not voided, no
    closing time). Written as a CASE so that no planner takes `closed_at IS NULL` for an
    index condition: the cases are found by their status (and the ticker's newest
    deadlines by its partial index), this only checks them."""
    return case((and_(Case.voided.is_(False), Case.closed_at.is_(None)), 1), else_=0) == 1


def current_in(statuses) -> object:
    """The cases whose stage now is one of `statuses` (open ones): `stage_now().in_()`
    written so that the indexes on `status` apply."""
    assert set(statuses) <= set(OPEN_STATUSES), statuses
    return and_(Case.status.in_(statuses), status_holds())


def _before(col, at: dt.datetime):
    return and_(col.is_not(None), col < at)


def settled_before(at: dt.datetime, events: bool = True):
    """Nothing recorded at or after `at`: every lifecycle time before it (and, with
    `events`, no case event at or after it)."""
    times = and_(*[or_(getattr(Case, c).is_(None), getattr(Case, c) < at) for c in LIFECYCLE_TIMES])
    if not events:
        return times
    later = exists().where(CaseEvent.case_id == Case.id, CaseEvent.at >= at)
    return and_(times, ~later)


def reached_by(at: dt.datetime, events: bool = True):
    """The stage a case had reached by `at`, from its events and lifecycle times before it."""
    by_time = case((_before(Case.verified_at, at), "verified"), (_before(Case.handled_at, at), "handled"),
                   (_before(Case.dispatched_at, at), "dispatched"), (_before(Case.filed_at, at), "filed"),
                   else_="reported")
    if not events:
        return by_time
    E = CaseEvent
    by_event = (select(E.to_status).where(E.case_id == Case.id, E.at < at, E.to_status.in_(OPEN_STATUSES))
                .order_by(E.at.desc(), E.id.desc()).limit(1).scalar_subquery())
    return func.coalesce(by_event, by_time)


def stage_at(at: dt.datetime, events: bool = True):
    """The stage of a case at the past instant `at` (see the module's docstring)."""
    return case((Case.voided.is_(True), literal("voided")), (_before(Case.closed_at, at), literal("closed")),
                (settled_before(at, events), stage_now()), else_=reached_by(at, events))


def may_be_open_at(at: dt.datetime):
    """A cheap superset of the cases open at `at` (to narrow before stage_at is computed)."""
    return and_(Case.voided.is_(False), Case.reported_at < at,
                or_(Case.closed_at.is_(None), Case.closed_at >= at))


def open_at(at: dt.datetime, events: bool = True):
    """The cases whose stage at `at` is an open one."""
    return and_(may_be_open_at(at), stage_at(at, events).in_(OPEN_STATUSES))


# -- which stages the city records ------------------------------------------------------
def inputs_present(engine: Engine, before: dt.datetime | None = None) -> tuple[bool, frozenset[str]]:
    """(whether the store has a case, the INPUTS that at least one case has a time for:
    the lifecycle stages with a time column, and `deadline`), counting only cases
    reported before `before` when given (and their times before it)."""
    def some(col):
        if before is None:
            return exists().where(col.is_not(None))
        cond = [Case.reported_at < before, col.is_not(None)]
        if col is not Case.deadline_at:  # a deadline is set when the case is: a later one counts
            cond.append(col < before)
        return exists().where(*cond)
    cols = [some(Case.reported_at).label("any")] + [some(getattr(Case, c)).label(s) for s, c in RECORDABLE]
    with engine.connect() as conn:
        row = conn.execute(select(*cols)).one()._mapping
    return bool(row["any"]), frozenset(s for s in INPUTS if row[s])


def recorded(has_cases: bool, present) -> frozenset[str]:
    """The INPUTS a city records: those some case has. A store without cases has shown no
    gap yet: everything counts as recorded."""
    return frozenset(present) if has_cases else frozenset(INPUTS)


def recorded_inputs(engine: Engine, before: dt.datetime | None = None) -> frozenset[str]:
    """The INPUTS the city records (see `recorded`), from its cases (before `before`)."""
    return recorded(*inputs_present(engine, before))
