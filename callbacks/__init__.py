"""Callback wiring. Callbacks read through dashboard.services and render with layouts."""
from __future__ import annotations


def register_callbacks(app) -> None:
    from callbacks import browse, home, snapshots, wall

    home.register(app)
    wall.register(app)
    browse.register(app)
    snapshots.register(app)
