"""The long-lived heap, kept out of the cyclic collector's way.

A full (generation 2) collection walks every tracked object. In a process that has
imported Dash, plotly, pandas and SQLAlchemy and loaded the poller's state that is
about 220,000 objects: 70-120 ms during which the process answers nothing and the poll
stands still, a few times an hour. What exists once the app is built, or once the
poller's first poll has loaded its state, lives as long as the process, so it is
collected once and frozen (gc.freeze): later collections walk only what came after.
"""
from __future__ import annotations

import gc
import os
import threading

_done: set[tuple[int, str]] = set()
_lock = threading.Lock()


def freeze_once(stage: str) -> bool:
    """Collect, then freeze what is left; once per process and stage ("app",
    "poller"). A forked child freezes again after its own start-up."""
    key = (os.getpid(), stage)
    with _lock:
        if key in _done:
            return False
        _done.add(key)
    gc.collect()
    gc.freeze()
    return True
