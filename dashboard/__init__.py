"""The command-center dashboard: settings, KPIs, services, the app factory and the CLI.

`create_app` is loaded on first use, so importing a pure module (`dashboard.snapshot`,
`dashboard.periods`) does not pull in Dash, APScheduler, Flask-Login and redis.
"""
from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from dashboard.factory import create_app

        return create_app
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
