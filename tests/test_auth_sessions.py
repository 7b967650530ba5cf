"""Sessions end for real: a saved copy of the session cookie stops working after logout,
a new password, disabling, a role change and a district change, on the host that did it
and on another host sharing the store (two app instances, one store, one SECRET_KEY)."""
from __future__ import annotations

import re

import pytest

from dashboard import cli, create_app
from dashboard.accounts import hash_password
from dashboard.services import EXTENSION
from datasource import users
from datasource.reference import load_reference

PASSWORD = "correct horse battery"
SECRET = "sessions-test-" + "s" * 24
DATA = ("/_dash-layout", "/browse/export.csv?what=kpis")


def _app(store_url, **overrides):
    return create_app({"DATABASE_URL": store_url, "AUTH_ENABLED": True, "SECRET_KEY": SECRET,
                       "POLLER_ENABLED": False, "AUTH_CACHE_SECONDS": 0, "DASHBOARD_ENV": "demo",
                       "REDIS_URL": "", **overrides})


@pytest.fixture
def hosts(store_url, monkeypatch):
    """Two app instances ("hosts") on one store, and a user of each kind."""
    made = [_app(store_url), _app(store_url)]
    engine = made[0].server.extensions[EXTENSION].engine
    load_reference(engine)
    for name, role, district in (("leader", "city_leader", None), ("jinshui", "district_leader", "410105")):
        users.create_user(engine, name, hash_password(PASSWORD), role, district)
    monkeypatch.setenv("DATABASE_URL", store_url)  # for the CLI commands
    yield made, engine
    for app in made:
        app.server.extensions[EXTENSION].engine.dispose()


def _login(client, username, password=PASSWORD):
    page = client.get("/login").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})


def _replay(app, cookie: str):
    """A fresh browser that carries only the saved cookie."""
    client = app.server.test_client()
    client.set_cookie("session", cookie)
    return client


def _refused(resp) -> bool:
    if resp.status_code == 302:
        return resp.headers["Location"].startswith("/login")
    return resp.status_code in (401, 403)


def _end_by(event, host_a_client, username, monkeypatch):
    if event == "logout":
        assert host_a_client.get("/logout").status_code == 302
    elif event == "password":
        monkeypatch.setattr("sys.stdin", _Stdin("a brand new passphrase\n"))
        assert cli.main(["users", "password", username, "--password-stdin"]) == 0
    elif event == "disable":
        assert cli.main(["users", "disable", username]) == 0
    elif event == "role":
        assert cli.main(["users", "role", username, "--role", "district_leader", "--district", "410105"]) == 0
    elif event == "district":
        assert cli.main(["users", "role", username, "--role", "district_leader", "--district", "410102"]) == 0


class _Stdin:
    def __init__(self, text):
        self.text = text

    def readline(self):
        return self.text


@pytest.mark.parametrize("event,username", [("logout", "leader"), ("password", "leader"), ("disable", "leader"),
                                            ("role", "leader"), ("district", "jinshui")])
def test_a_saved_session_cookie_stops_working_on_every_host(hosts, event, username, monkeypatch):
    (host_a, host_b), _engine = hosts
    client = host_a.server.test_client()
    assert _login(client, username).status_code == 302
    saved = client.get_cookie("session").value
    for app in (host_a, host_b):  # the copy works on both hosts before the event
        for path in DATA:
            assert _replay(app, saved).get(path).status_code == 200, (app, path)
    _end_by(event, client, username, monkeypatch)
    for app in (host_a, host_b):
        for path in DATA:
            resp = _replay(app, saved).get(path)
            assert _refused(resp), (event, path, resp.status_code)
    # a new login works again (but after disable), with what the store now says
    fresh = host_b.server.test_client()
    password = "a brand new passphrase" if event == "password" else PASSWORD
    code = _login(fresh, username, password).status_code
    assert code == (401 if event == "disable" else 302)
    if event == "district":
        assert fresh.get("/_dash-layout").status_code == 200


def test_logout_ends_the_session_at_once_in_its_own_process_despite_the_cache(hosts, store_url):
    (_a, _b), _engine = hosts
    app = _app(store_url, AUTH_CACHE_SECONDS=300)  # what a worker trusts for five minutes
    client = app.server.test_client()
    _login(client, "leader")
    saved = client.get_cookie("session").value
    assert _replay(app, saved).get("/_dash-layout").status_code == 200  # now cached
    client.get("/logout")
    assert _replay(app, saved).get("/_dash-layout").status_code == 401
    app.server.extensions[EXTENSION].engine.dispose()


def test_logout_ends_the_users_other_sessions_and_no_other_users(hosts):
    (host_a, host_b), _engine = hosts
    laptop, phone, other = (host_a.server.test_client(), host_b.server.test_client(),
                            host_b.server.test_client())
    _login(laptop, "leader")
    _login(phone, "leader")
    _login(other, "jinshui")
    laptop.get("/logout")
    assert phone.get("/_dash-layout").status_code == 401
    assert other.get("/_dash-layout").status_code == 200


def test_a_rehash_of_the_same_password_keeps_the_session(hosts):
    (host_a, _b), engine = hosts
    client = host_a.server.test_client()
    _login(client, "leader")
    users.update_user(engine, "leader", password_hash=hash_password(PASSWORD), end_sessions=False)
    assert client.get("/_dash-layout").status_code == 200
