"""`python -m dashboard`: commands, their exit codes and their errors."""
import pytest
from sqlalchemy import func, select

from dashboard.cli import main
from dashboard.settings import settings_markdown
from datasource import schema
from datasource.engine import make_engine


def test_db_upgrade_then_seed_then_if_empty(store_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", store_url)
    assert main(["db", "upgrade"]) == 0
    from datasource.migrate import head_revision

    assert f"revision {head_revision()} (head {head_revision()})" in capsys.readouterr().out
    assert main(["seed", "--scale", "800", "--seed", "4", "--now", "2026-11-26T12:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "cases" in out and "rows/s" in out
    assert main(["seed", "--scale", "800", "--if-empty"]) == 0
    assert "not seeding" in capsys.readouterr().out
    assert main(["seed", "--scale", "800"]) == 2  # refuses to overwrite
    assert "--reset" in capsys.readouterr().err
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.Case)).scalar_one() == 800
    engine.dispose()
    assert main(["seed", "--scale", "300", "--reset", "--now", "2026-11-26T12:00:00+08:00"]) == 0
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.Case)).scalar_one() == 300
    engine.dispose()


@pytest.mark.parametrize("args, message", [
    (["seed", "--scale", "lots"], "expected 100k, 1M, 10M"),
    (["seed", "--now", "2026-11-26 12:00"], "give a time zone"),
])
def test_bad_arguments_are_explained(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_setting_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("DASHBOARD_PORT", "http")
    assert main(["settings-doc"]) == 2
    assert "DASHBOARD_PORT" in capsys.readouterr().err


def test_settings_doc_prints_the_table(capsys):
    assert main(["settings-doc"]) == 0
    assert capsys.readouterr().out == settings_markdown()


def test_simulate_runs_a_few_ticks(store_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", store_url)
    assert main(["seed", "--scale", "500", "--now", "2026-11-26T12:00:00+08:00"]) == 0
    assert main(["simulate", "--rate", "20", "--ticks", "2"]) == 0
    engine = make_engine(store_url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.Case)).scalar_one()
    engine.dispose()
    assert n > 500
