"""Settings: one table, documented in docs/settings.md, parsed with clear errors."""
from pathlib import Path

import pytest

from dashboard.settings import SETTINGS, Settings, SettingsError, resolve_database_url, settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_docs_settings_md_matches_the_code():
    assert (ROOT / "docs" / "settings.md").read_text(encoding="utf-8") == settings_markdown(), \
        "docs/settings.md is stale: run `make docs`"


def test_every_setting_read_in_code_is_declared():
    """Every DASHBOARD_/... name the code reads through settings[...] is in the table."""
    import re

    declared = {s.name for s in SETTINGS}
    used = set()
    for folder in ("dashboard", "layouts", "callbacks", "datasource"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r'settings\[\s*"([A-Z_]+)"\s*\]', path.read_text(encoding="utf-8")))
    assert used and used <= declared, f"undeclared: {used - declared}"


def test_defaults_parse_and_overrides_win():
    s = Settings.from_env({"DASHBOARD_PORT": "9000"}, environ={"DASHBOARD_TIMEZONE": "UTC"})
    assert s["DASHBOARD_PORT"] == 9000
    assert s["DASHBOARD_TIMEZONE"] == "UTC"
    assert s["DASHBOARD_LANGUAGE"] == "zh-CN"


@pytest.mark.parametrize("name, value", [("DASHBOARD_PORT", "eighty"), ("DASHBOARD_TIMEZONE", "Mars/Base"),
                                         ("DASHBOARD_LANGUAGE", "fr"), ("SIMULATOR_RATE", "-1")])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value}, environ={})


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="NOT_A_SETTING"):
        Settings.from_env({"NOT_A_SETTING": "1"}, environ={})


def test_relative_sqlite_path_resolves_against_project():
    assert resolve_database_url("sqlite:///var/x.db") == f"sqlite:///{ROOT}/var/x.db"
    assert resolve_database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert resolve_database_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
