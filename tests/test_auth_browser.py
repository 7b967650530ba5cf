"""Login and a token wall in a real Chromium, under the app's Content-Security-Policy."""
from __future__ import annotations

import pytest

from dashboard import create_app
from dashboard.accounts import hash_password, new_display_token
from dashboard.poller import Poller
from dashboard.services import EXTENSION
from datasource import users
from tests.conftest import BACKLOG, FIXED_NOW, only_local, seeded_store_url

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def secured(request, tmp_path, serve):
    url = seeded_store_url("sqlite", request, tmp_path, profile=BACKLOG, seed=4, total_cases=2000, now=FIXED_NOW,
                           occupancy_days=1)
    app = create_app({"DATABASE_URL": url, "AUTH_ENABLED": True, "SECRET_KEY": "browser-test-" + "y" * 20,
                      "DASHBOARD_ENV": "demo", "POLLER_ENABLED": False, "PAGE_REFRESH_SECONDS": 0.5})
    svc = app.server.extensions[EXTENSION]
    users.create_user(svc.engine, "jinshui", hash_password(PASSWORD), "district_leader", "410105")
    Poller(svc.settings, engine=svc.engine, cache=svc.cache).poll_once()
    return serve(app), svc


def test_login_then_the_wall_of_ones_own_district(secured, page):
    server, svc = secured
    page.goto(server.url + "/wall?lang=en")
    assert "/login" in page.url
    page.fill("#username", "jinshui")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".error").count() == 1
    assert [e for e in page.console_errors if "401" not in e] == []  # the refused POST, as expected
    page.console_errors.clear()
    page.fill("#username", "jinshui")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#card-open_cases .card-value[data-value]")
    assert page.url.endswith("/wall?lang=en")
    assert "Jinshui" in page.inner_text(".wall-title")  # a district leader's wall is their district's
    expected = svc.cache.get().sections["cases"].data["open"]["by_district"]["410105"]["total"]
    assert int(page.get_attribute("#card-open_cases .card-value", "data-value")) == expected
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_a_wall_opened_with_its_token(secured, page):
    server, svc = secured
    _id, token = new_display_token(svc.engine, "hall", "410171")
    page.goto(f"{server.url}/wall?token={token}")
    page.wait_for_selector("#card-open_cases .card-value[data-value]")
    page.wait_for_selector("#wall-light.light-fresh")
    expected = svc.cache.get().sections["cases"].data["open"]["by_district"]["410171"]["total"]
    assert int(page.get_attribute("#card-open_cases .card-value", "data-value")) == expected
    page.goto(server.url + "/")
    assert "wall" in page.inner_text("body").lower() or "大屏" in page.inner_text("body")  # refused page
    assert page.console_errors == [] or all("403" in e for e in page.console_errors)
    assert only_local(page.requested) == []
