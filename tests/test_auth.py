"""Login, roles, display tokens and hardening, over HTTP as a browser or an attacker
would send it: every page and data endpoint needs a login, scope holds for hand-made
callback requests, tokens are revocable, and the headers and cookies are right."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.wall_helpers import WallDisplay
from dashboard import create_app
from dashboard.accounts import check_password, hash_password, new_display_token
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from dashboard.settings import PROJECT_ROOT, SettingsError
from datasource import users
from tests.conftest import BACKLOG, FIXED_NOW, seeded_store_url

PASSWORD = "correct horse battery"


_made = []


def _app(store_url, **overrides):
    settings = {"DATABASE_URL": store_url, "AUTH_ENABLED": True, "SECRET_KEY": "test-secret-" + "x" * 20,
                "POLLER_ENABLED": False, "AUTH_CACHE_SECONDS": 0, "DASHBOARD_ENV": "demo",
                "LOGIN_RATE_LIMIT": "10 per minute", **overrides}
    app = create_app(settings)
    _made.append(app)
    return app


@pytest.fixture(autouse=True)
def _dispose_apps():
    yield
    while _made:
        _made.pop().server.extensions[EXTENSION].engine.dispose()


@pytest.fixture
def city(backend, request, tmp_path):
    """A seeded store with its snapshot published, and one user of each role."""
    app = _app(seeded_store_url(backend, request, tmp_path, profile=BACKLOG, seed=9, total_cases=2000,
                                now=FIXED_NOW, occupancy_days=1))
    svc = app.server.extensions[EXTENSION]
    for name, role, district in (("admin", "admin", None), ("leader", "city_leader", None),
                                 ("jinshui", "district_leader", "410105")):
        users.create_user(svc.engine, name, hash_password(PASSWORD), role, district)
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    yield app, svc
    svc.engine.dispose()


def _login(client, username, password=PASSWORD, next_="/"):
    page = client.get("/login").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf,
                                       "next": next_})


def _cards(sent: dict) -> dict:
    """data-kpi -> data-value of the stat cards in a refresh's response."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props")
            if isinstance(props, dict) and "data-kpi" in props and "data-value" in props:
                found[props["data-kpi"]] = props["data-value"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sent["ov-cards-body"])
    return found


def _wall(client, config=None):
    def post(body):
        resp = client.post("/_dash-update-component", json=body)
        return resp.status_code, resp.data
    return WallDisplay(post, config)


def test_nothing_is_reachable_without_login_but_health(city):
    app, _svc = city
    client = app.server.test_client()
    for path in ("/", "/wall", "/wall?district=410105", "/_dash-layout", "/_dash-dependencies"):
        resp = client.get(path)
        assert resp.status_code in (302, 401), path
        if resp.status_code == 302:
            assert resp.headers["Location"].startswith("/login")
    status, raw, _sent = _wall(client).refresh()
    assert status == 401 and b"login required" in raw
    for rule in app.server.url_map.iter_rules():  # every route the app has, not a hand-kept list
        if "GET" not in rule.methods or "<" in rule.rule or rule.rule.startswith(("/assets", "/_dash-component")):
            continue
        code = client.get(rule.rule).status_code
        if rule.rule in ("/healthz", "/readyz", "/metrics", "/login", "/logout", "/_favicon.ico", "/favicon.ico"):
            assert code in (200, 302, 503), rule.rule  # /logout redirects to /login
        else:
            assert code in (302, 401, 405), rule.rule
    assert client.get("/healthz").status_code == 200
    assert b"case" not in client.get("/readyz").data.lower()


def test_login_flow_cookies_and_headers(city):
    app, _svc = city
    client = app.server.test_client()
    page = client.get("/login")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    no_csrf = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert no_csrf.status_code == 400  # the form needs its CSRF token
    assert _login(client, "admin", "wrong password").status_code == 401
    assert _login(client, "nobody").status_code == 401
    ok = _login(client, "admin", next_="/wall")
    assert ok.status_code == 302 and ok.headers["Location"] == "/wall"
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/wall").status_code == 200
    assert _wall(client).refresh()[0] == 200
    # the page asked for comes back whole, query included
    fresh = app.server.test_client()
    to_login = fresh.get("/wall?district=410105&lang=en")
    nxt = re.search(r"next=([^&]+)$", to_login.headers["Location"]).group(1)
    from urllib.parse import unquote

    assert unquote(nxt) == "/wall?district=410105&lang=en"
    assert _login(fresh, "admin", next_=unquote(nxt)).headers["Location"] == "/wall?district=410105&lang=en"
    # only local redirects after login
    other = app.server.test_client()
    assert _login(other, "leader", next_="//evil.example/x").headers["Location"] == "/"
    assert _login(app.server.test_client(), "leader", next_="https://evil.example/").headers["Location"] == "/"


def test_production_needs_a_secret_and_secure_cookies(store_url):
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        _app(store_url, SECRET_KEY="", DASHBOARD_ENV="production")
    app = _app(store_url, DASHBOARD_ENV="production")
    assert app.server.config["SESSION_COOKIE_SECURE"] is True
    assert "Strict-Transport-Security" in app.server.test_client().get("/login").headers


def test_login_attempts_are_rate_limited(city):
    app, _svc = city
    client = app.server.test_client()
    codes = [_login(client, "admin", "wrong password").status_code for _ in range(12)]
    assert codes[:10] == [401] * 10 and codes[-1] == 429
    assert client.get("/login").status_code == 200  # only the attempts are limited, not the form
    assert _login(client, "admin").status_code == 429  # even the right password waits


def test_a_district_leader_gets_only_their_district_whatever_the_request_says(city):
    app, svc = city
    client = app.server.test_client()
    _login(client, "jinshui")
    snap = svc.cache.get()
    cases = snap.sections["cases"].data
    for config in ({"lang": "zh-CN", "district": "410102", "kpi": "open_cases"},
                   {"lang": "zh-CN", "district": None, "kpi": "open_cases"}):
        status, raw, sent = _wall(client, config).refresh()
        assert status == 200
        cards = _cards(sent)
        assert int(cards["open_cases"]) == cases["open"]["by_district"]["410105"]["total"]
        assert int(cards["overdue"]) == cases["overdue"]["by_district"]["410105"]
        ranks = sent["ov-closure-rank-body"]["figure"]["data"][0]
        assert ranks["customdata"] == ["410105"]  # no other district's figures (tests/test_wall_scope.py)
    # the first page shows their district only, its figures called by its name
    home = client.post("/_dash-update-component", json={
        "output": "..home-body.children...home-freshness.children...home-notice.children...home-shown.data..",
        "outputs": [{"id": "home-body", "property": "children"}, {"id": "home-freshness", "property": "children"},
                    {"id": "home-notice", "property": "children"}, {"id": "home-shown", "property": "data"}],
        "inputs": [{"id": "home-interval", "property": "n_intervals", "value": 1},
                   {"id": "home-location", "property": "search", "value": ""}],
        "state": [{"id": "home-shown", "property": "data", "value": None}],
        "changedPropIds": ["home-interval.n_intervals"]})
    assert home.status_code == 200
    body = json.dumps(home.get_json(), ensure_ascii=False)
    districts = set(re.findall(r'"data-(?:district|row)":\s*"(\w+)"', body))
    assert districts == {"410105"}
    assert "金水区" in body and "全市" not in body
    open_now = re.search(r'"data-kpi":\s*"open_cases",\s*"data-value":\s*"(\d+)"', body) or \
        re.search(r'"data-value":\s*"(\d+)",\s*"data-kpi":\s*"open_cases"', body)
    assert int(open_now.group(1)) == cases["open"]["by_district"]["410105"]["total"]


def test_display_tokens_open_the_wall_only_and_can_be_revoked(city):
    app, svc = city
    token_id, token = new_display_token(svc.engine, "lobby wall", "410171")
    client = app.server.test_client()
    assert client.get(f"/wall?token={token}&rotate=30").status_code == 200
    status, raw, sent = _wall(client).refresh()
    assert status == 200
    cards = _cards(sent)
    assert int(cards["open_cases"]) == svc.cache.get().sections["cases"].data["open"]["by_district"]["410171"]["total"]
    assert client.get("/").status_code == 403  # a display shows the wall and nothing else
    home = client.post("/_dash-update-component", json={"output": "..home-body.children..", "inputs": []})
    assert home.status_code == 403
    assert app.server.test_client().get("/wall?token=not-a-token").status_code == 403
    users.revoke_token(svc.engine, token_id)
    assert _wall(client).refresh()[0] in (401, 403)  # the open wall loses access (AUTH_CACHE_SECONDS=0 here)
    assert app.server.test_client().get(f"/wall?token={token}").status_code == 403


def test_disabled_user_loses_access(city):
    app, svc = city
    client = app.server.test_client()
    _login(client, "leader")
    assert _wall(client).refresh()[0] == 200
    users.update_user(svc.engine, "leader", active=False)
    assert _wall(client).refresh()[0] == 401
    assert check_password(svc.engine, "leader", PASSWORD) is None


def test_demo_accounts_get_new_passwords_at_each_start(city, tmp_path):
    from dashboard.accounts import demo_accounts

    app, svc = city
    first, second = demo_accounts(svc.engine, tmp_path), demo_accounts(svc.engine, tmp_path)
    (name, old, _), (_, new, _) = first.logins[0], second.logins[0]
    assert old != new and first.wall_token == second.wall_token  # one demo wall token, reused
    assert check_password(svc.engine, name, old) is None and check_password(svc.engine, name, new)
    client = app.server.test_client()
    assert client.get(f"/wall?token={second.wall_token}").status_code == 200
    assert client.get("/logout").status_code == 302
    assert client.get("/wall").status_code == 302  # logged out: back to the login page


def test_metrics_can_be_limited_to_addresses_and_a_token(store_url):
    app = _app(store_url, METRICS_ALLOW="10.0.0.0/8")
    assert app.server.test_client().get("/metrics").status_code == 403  # the test client is 127.0.0.1
    app = _app(store_url, METRICS_ALLOW="127.0.0.1/32", METRICS_TOKEN="s3cret-token")
    client = app.server.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_accounts_cli(store_url):
    env = {"DATABASE_URL": store_url, "PATH": "/usr/bin:/bin"}

    def cli(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=PROJECT_ROOT, env=env,
                              input=stdin, capture_output=True, text=True, timeout=60)

    from datasource.engine import make_engine
    from datasource.reference import load_reference

    engine = make_engine(store_url)
    load_reference(engine)
    made = cli("users", "add", "erqi", "--role", "district_leader", "--district", "410103", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert check_password(engine, "erqi", PASSWORD)["district_code"] == "410103"
    bad = cli("users", "add", "x", "--role", "district_leader", "--district", "999999", "--generate")
    assert bad.returncode == 2 and "999999" in bad.stderr
    short = cli("users", "add", "y", "--role", "admin", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "10 characters" in short.stderr
    assert "erqi" in cli("users", "list").stdout
    token = cli("tokens", "add", "--label", "hall", "--district", "410103")
    assert token.returncode == 0 and "/wall?token=" in token.stdout
    assert "hall" in cli("tokens", "list").stdout
    token_id = users.list_tokens(engine)[0]["id"]
    assert cli("tokens", "revoke", "--id", str(token_id)).returncode == 0
    assert cli("tokens", "revoke", "--id", str(token_id)).returncode == 2  # already revoked
    assert cli("users", "disable", "erqi").returncode == 0
    assert check_password(engine, "erqi", PASSWORD) is None
    engine.dispose()
