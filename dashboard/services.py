"""What the pages need from the store, behind one object that the factory builds per app.

Callbacks reach it with `services()` (the Flask app of the current request) and never
touch SQL themselves. Screens read the poller's snapshot through `services().cache`:

    snap = services().cache.get_if_changed(known_version)   # None: nothing new to draw
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import Engine

from dashboard.cache import Cache
from dashboard.reference import ReferenceSource
from dashboard.rendered import RenderCache
from dashboard.settings import Settings

if TYPE_CHECKING:
    from dashboard.poller import Poller

EXTENSION = "command_center"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    cache: Cache | None = None  # the snapshot, shared by workers (dashboard/cache.py)
    poller: "Poller | None" = None  # this process's poller, when POLLER_ENABLED
    reference: ReferenceSource | None = None  # district and category names, shapes
    rendered: RenderCache | None = None  # screens rendered once per snapshot version and view

    @classmethod
    def from_settings(cls, settings: Settings) -> "Services":
        engine = settings.engine()
        cache = Cache.from_settings(settings)
        return cls(settings, engine, cache, reference=ReferenceSource(engine), rendered=RenderCache(cache))


def services() -> Services:
    return current_app.extensions[EXTENSION]
