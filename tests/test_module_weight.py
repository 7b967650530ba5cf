"""Pure modules stay light: importing them must not start the web stack.

`dashboard/__init__.py` used to import the app factory, so `import dashboard.snapshot`
loaded Dash, APScheduler, Flask-Login and redis (about 1,200 modules) in every tool and
child process that only needed a snapshot or a period."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("dash", "apscheduler", "flask", "flask_login", "redis", "plotly")


@pytest.mark.parametrize("module", ["dashboard", "dashboard.snapshot", "dashboard.periods", "dashboard.settings",
                                    "dashboard.thresholds", "dashboard.kpis", "dashboard.kpis.cases"])
def test_pure_module_does_not_load_the_web_stack(module):
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} loaded {out}"


def test_create_app_is_still_importable_from_the_package():
    from dashboard import create_app
    from dashboard.factory import create_app as direct

    assert create_app is direct
