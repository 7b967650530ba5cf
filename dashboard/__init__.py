"""The command-center dashboard: settings, KPIs, services, the app factory and the CLI."""
from dashboard.factory import create_app

__all__ = ["create_app"]
