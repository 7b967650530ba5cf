"""Passwords people guess first are refused; production refuses to start open or with a
guessable secret; the demo keeps one wall token and leaves a disabled account disabled."""
from __future__ import annotations

import os
import secrets

import pytest

from dashboard import cli, create_app
from dashboard.accounts import DEMO_WALL, check_password, demo_accounts, hash_password, new_password
from dashboard.passwords import common_passwords
from dashboard.services import EXTENSION
from dashboard.settings import SettingsError
from datasource import users
from datasource.engine import make_engine
from datasource.reference import load_reference

REFUSED = {
    "aaaaaaaaaa": "different characters",
    "password12": "most common passwords",
    "Password12": "most common passwords",
    "1234567890": "sequence",
    "abcdefghij": "sequence",
    "9876543210": "sequence",
    "qwertyuiop": "sequence",
    "abcabcabcabc": "different characters",
    "blue-sky-blue-sky-": "shorter pattern",
    "p@ssw0rd2024!": "common password with a few characters",
    "iloveyou2024": "common password with a few characters",
    "short": "at least 10 characters",
}


@pytest.mark.parametrize("password,why", sorted(REFUSED.items()))
def test_guessable_passwords_are_refused_with_the_reason(password, why):
    with pytest.raises(users.AccountError, match=why):
        hash_password(password)


def test_good_passwords_pass_and_the_list_ships_with_the_code():
    assert len(common_passwords()) > 10_000 and "password12" in common_passwords()
    for password in ("correct horse battery", "Tr0ub4dor&3-lantern", new_password(), secrets.token_urlsafe(9)):
        assert hash_password(password).startswith("$argon2id$")
    with pytest.raises(users.AccountError, match="user name"):
        hash_password("jinshui-office-7", "jinshui")


def test_the_users_command_refuses_a_common_password(store_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", store_url)
    engine = make_engine(store_url)
    monkeypatch.setattr("sys.stdin", _Stdin("password12\n"))
    assert cli.main(["users", "add", "someone", "--role", "admin", "--password-stdin"]) == 2
    assert "most common passwords" in capsys.readouterr().err
    assert users.user_by_name(engine, "someone") is None
    users.create_user(engine, "someone", hash_password("correct horse battery"), "admin")
    monkeypatch.setattr("sys.stdin", _Stdin("aaaaaaaaaa\n"))
    assert cli.main(["users", "password", "someone", "--password-stdin"]) == 2
    assert check_password(engine, "someone", "correct horse battery") is not None
    engine.dispose()


class _Stdin:
    def __init__(self, text):
        self.text = text

    def readline(self):
        return self.text


# --- production guards ------------------------------------------------------------------
def _production(store_url, **overrides):
    app = create_app({"DATABASE_URL": store_url, "DASHBOARD_ENV": "production", "POLLER_ENABLED": False,
                      "AUTH_ENABLED": True, "SECRET_KEY": "p" * 32, **overrides})
    app.server.extensions[EXTENSION].engine.dispose()
    return app


def test_production_refuses_to_start_without_login(store_url):
    with pytest.raises(SettingsError, match="AUTH_ENABLED"):
        _production(store_url, AUTH_ENABLED=False)
    assert _production(store_url, AUTH_ENABLED=False, DASHBOARD_ENV="demo")  # development may


def test_production_refuses_a_short_secret_key(store_url):
    for short in ("", "x" * 31, "changeme"):
        with pytest.raises(SettingsError, match="SECRET_KEY must be set to at least 32 characters"):
            _production(store_url, SECRET_KEY=short)
    assert _production(store_url, SECRET_KEY=secrets.token_hex(16))  # 32 characters


def test_serve_refuses_production_without_login_before_starting_gunicorn(monkeypatch, capsys):
    monkeypatch.setenv("DASHBOARD_ENV", "production")
    monkeypatch.setenv("AUTH_ENABLED", "false")
    monkeypatch.setenv("SECRET_KEY", "q" * 40)

    def execv(*_args):
        raise AssertionError("gunicorn would have started")

    monkeypatch.setattr(os, "execv", execv)
    assert cli.main(["serve"]) == 2
    assert "AUTH_ENABLED" in capsys.readouterr().err


# --- the demo's accounts ----------------------------------------------------------------
@pytest.fixture
def demo_store(store_url):
    engine = make_engine(store_url)
    load_reference(engine)
    yield engine
    engine.dispose()


def _active_demo_tokens(engine):
    return [t for t in users.list_tokens(engine) if t["label"] == DEMO_WALL and t["revoked_at"] is None]


def test_each_demo_start_reuses_the_one_demo_wall_token(demo_store, tmp_path):
    old_runs = [users.create_token(demo_store, secrets.token_hex(32), DEMO_WALL, None) for _ in range(2)]
    first = demo_accounts(demo_store, tmp_path)
    second = demo_accounts(demo_store, tmp_path)
    assert first.wall_token == second.wall_token
    active = _active_demo_tokens(demo_store)
    assert len(active) == 1 and active[0]["id"] not in old_runs  # earlier runs' tokens revoked
    assert oct((tmp_path / "demo_wall_token").stat().st_mode & 0o777) == "0o600"
    # the token kept on the host was revoked by hand: the next start makes one new token
    users.revoke_token(demo_store, active[0]["id"])
    third = demo_accounts(demo_store, tmp_path)
    assert third.wall_token != second.wall_token and len(_active_demo_tokens(demo_store)) == 1
    # another host (no token file) replaces it: still only one active
    fourth = demo_accounts(demo_store, tmp_path / "other-host")
    active = _active_demo_tokens(demo_store)
    assert len(active) == 1 and fourth.wall_token not in (third.wall_token,)


def test_the_demo_leaves_a_disabled_admin_disabled(demo_store, tmp_path):
    first = demo_accounts(demo_store, tmp_path)
    admin_password = dict((n, p) for n, p, _ in first.logins)["admin"]
    users.update_user(demo_store, "admin", active=False)
    second = demo_accounts(demo_store, tmp_path)
    logins = {n: p for n, p, _ in second.logins}
    assert logins["admin"] is None and logins["leader"]
    admin = users.user_by_name(demo_store, "admin")
    assert admin["active"] is False
    assert check_password(demo_store, "admin", admin_password) is None
    assert check_password(demo_store, "leader", logins["leader"])
