"""The fencing token the current poll writes the KPI state under.

The poller sets it around each poll (`writing_as`); stateful sections read it with
`current()` and pass it to every write of their persisted state, which the store
refuses once another process has become the owner (datasource.kpi_owner). Outside a
poll it is None: a test or a one-off computation writes unfenced.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from datasource.kpi_owner import Fenced  # noqa: F401  (re-exported for sections and the poller)

NO_TOKEN = -1  # the owner's token could not be read: every fenced write is refused

_token: ContextVar[int | None] = ContextVar("kpi_owner_token", default=None)


def current() -> int | None:
    return _token.get()


@contextmanager
def writing_as(token: int | None):
    reset = _token.set(token)
    try:
        yield
    finally:
        _token.reset(reset)
