"""The city profile: loaded by `python -m dashboard city load`, kept in the store, and
its time zone the one zone of imports, settings and processes."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest
from sqlalchemy import select

import dashboard.cli as cli
from dashboard import profile as city
from dashboard.settings import Settings
from datasource.engine import make_engine
from datasource.schema import Case
from tests.import_helpers import run, write_csv

UTC = dt.timezone.utc
CHICAGO = """\
name: {zh: 芝加哥, en: Chicago}
timezone: America/Chicago
language: en
subjects: [cases]
"""


@pytest.fixture
def cli_store(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("LOCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DASHBOARD_TIMEZONE", raising=False)
    return engine


def _profile(tmp_path, text=CHICAGO):
    path = tmp_path / "city.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_city_load_and_show(cli_store, tmp_path, capsys):
    assert cli.main(["city", "show"]) == 0
    assert "no city profile in the store: DASHBOARD_TIMEZONE Asia/Shanghai applies" in capsys.readouterr().out
    assert cli.main(["city", "load", str(_profile(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "芝加哥 / Chicago, time zone America/Chicago, records cases" in out
    assert cli.main(["city", "show"]) == 0
    out = capsys.readouterr().out
    assert "title: 芝加哥城市运行指挥中心 / Chicago City Operations Center" in out
    assert "time zone: America/Chicago" in out and "records: cases" in out
    stored = city.stored(cli_store)
    assert (stored.subjects, stored.language) == (("cases",), "en")
    assert city.recorded_subjects(cli_store) == ("cases",) and city.zone(cli_store).key == "America/Chicago"


@pytest.mark.parametrize("text, key", [
    ("name: X\ntimezone: Mars/Olympus\n", "`timezone`: unknown time zone 'Mars/Olympus'"),
    ("name: X\n", "`timezone`: missing"),
    ("timezone: UTC\n", "`name`: missing"),
    ("name: X\ntimezone: UTC\nsubjects: [cases, weather]\n", "`subjects[1]`: unknown subject 'weather'"),
    ("name: X\ntimezone: UTC\nsubjects: []\n", "`subjects`: expected a list of one or more"),
    ("name: X\ntimezone: UTC\ntitel: Y\n", "`titel`: unknown key"),
    ("name: {zh: X, fr: Y}\ntimezone: UTC\n", "`name.fr`: unknown key"),
    ("name: X\ntimezone: UTC\nlanguage: fr\n", "`language`: expected zh-CN or en"),
    ("name: [X\n", "not valid YAML"),
])
def test_a_bad_profile_is_refused_naming_the_key(cli_store, tmp_path, capsys, text, key):
    assert cli.main(["city", "load", str(_profile(tmp_path, text))]) == 2
    assert key in capsys.readouterr().err
    assert city.stored(cli_store) is None


def test_the_profile_zone_reads_naive_times_and_the_summary_says_so(reference_engine, tmp_path):
    path = write_csv(tmp_path / "cases.csv", ["id", "source", "category", "district", "reported_at"],
                     [["Z1", "app", "S05-01", "金水", "2026-11-26 09:00"]])

    def reported():
        with reference_engine.connect() as conn:
            return conn.execute(select(Case.reported_at).where(Case.external_id == "Z1")).scalar_one()

    # no profile: the tz handed in (DASHBOARD_TIMEZONE)
    result = run(reference_engine, path, tz="Asia/Shanghai")
    assert result.summary_lines()[0] == "times without a zone read in Asia/Shanghai (DASHBOARD_TIMEZONE)"
    assert reported() == dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    # a profile: its zone wins over the setting
    city.store(reference_engine, city.parse_profile({"name": "Chicago", "timezone": "America/Chicago"}, "t"))
    result = run(reference_engine, path, tz="Asia/Shanghai")
    assert result.summary_lines()[0] == "times without a zone read in America/Chicago (the city profile)"
    assert (result.updated, reported()) == (1, dt.datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    # a mapping's own zone wins for its import
    mapping = tmp_path / "m.yaml"
    mapping.write_text("timezone: Europe/Berlin\n", encoding="utf-8")
    result = run(reference_engine, path, tz="Asia/Shanghai", mapping=mapping)
    assert result.summary_lines()[0] == "times without a zone read in Europe/Berlin (the mapping's `timezone:`)"
    assert reported() == dt.datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_settings_under_the_profile_and_its_copy_when_the_store_is_away(tmp_path):
    db = tmp_path / "store.db"
    engine = make_engine(f"sqlite:///{db}")
    from datasource.migrate import upgrade

    upgrade(engine)
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{db}", "LOCAL_CACHE_DIR": str(tmp_path / "cache"),
                                  "DASHBOARD_TIMEZONE": "Asia/Shanghai", "DASHBOARD_LANGUAGE": "zh-CN"})
    assert city.with_profile(settings).tz.key == "Asia/Shanghai"  # no profile: the settings stand
    city.store(engine, city.parse_profile({"name": {"zh": "芝加哥", "en": "Chicago"}, "timezone": "America/Chicago",
                                           "title": {"en": "Chicago 311 Operations"}}, "t"))
    engine.dispose()
    under = city.with_profile(settings)
    assert (under.tz.key, under["DASHBOARD_TIMEZONE"], under["DASHBOARD_TITLE"]) == \
        ("America/Chicago", "America/Chicago", "Chicago 311 Operations")  # one title given: both languages
    assert under.city.name_en == "Chicago" and city.with_profile(under) is under
    # the store goes away: a process starting now uses the copy read last
    shutil.move(db, tmp_path / "elsewhere.db")
    assert city.with_profile(settings).tz.key == "America/Chicago"
    # no copy either: the settings, said in the log
    for f in (tmp_path / "cache").glob("city-profile-*.json"):
        f.unlink()
    assert city.with_profile(settings).tz.key == "Asia/Shanghai"


def test_the_app_takes_its_zone_and_title_from_the_profile(reference_engine, tmp_path):
    from dashboard.factory import create_app
    from dashboard.services import EXTENSION

    city.store(reference_engine, city.parse_profile(
        {"name": {"zh": "芝加哥", "en": "Chicago"}, "timezone": "America/Chicago", "language": "en"}, "t"))
    app = create_app({"DATABASE_URL": reference_engine.url.render_as_string(hide_password=False),
                      "POLLER_ENABLED": "false", "REDIS_URL": "", "LOCAL_CACHE_DIR": str(tmp_path / "cache")})
    svc = app.server.extensions[EXTENSION]
    assert svc.settings.tz.key == "America/Chicago" and svc.settings["DASHBOARD_LANGUAGE"] == "en"
    assert app.title == "Chicago City Operations Center"
    svc.engine.dispose()


def test_the_demo_profile_is_valid_and_is_the_demo_city():
    demo = city.load_file(city.DEMO_PROFILE)
    assert (demo.name_zh, demo.timezone, demo.subjects) == ("郑州市", "Asia/Shanghai", city.SUBJECTS)
    assert demo.title("zh-CN") == Settings.from_env(environ={})["DASHBOARD_TITLE"]
    assert json.loads(json.dumps(demo.to_json())) == demo.to_json()
