"""`/snapshots` in a real Chromium: the archive's weeks with their status and downloads,
the week-over-week view, "export now", the language switch, and scope narrowing."""
from __future__ import annotations

import json
import re

import pytest

from dashboard import create_app
from dashboard.scope import Scope
from dashboard.weekly.archive import Archive
from dashboard.weekly.runner import export_week
from tests.conftest import only_local, wait_until
from tests.weekly_helpers import MONDAY_8AM, WEEK, seeded_store, settings_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EARLIER = "2026-W46"
FAILED = "2026-W45"


@pytest.fixture(scope="module")
def archive_app_settings(request, tmp_path_factory):
    """Two exported weeks (the city; the later one for a district too) and one refused week
    (no parking readings that far back)."""
    folder = tmp_path_factory.mktemp("weekly-page")
    url = seeded_store("postgresql", request, folder, days=8)
    settings = settings_for(url, folder / "reports")
    for week, scope in ((EARLIER, "city"), (WEEK, "city"), (WEEK, "410105")):
        assert export_week(settings, week, scope=scope, now=MONDAY_8AM).status == "ok"
    refused = export_week(settings, FAILED, scope="city", now=MONDAY_8AM)
    assert refused.status == "failed" and "no occupancy reading" in refused.error
    return settings


def _app(settings, scope: Scope | None = None):
    app = create_app(settings)
    if scope is not None:  # what the login issue's resolver does for a district leader
        app.server.extensions["command_center_scope"] = lambda: scope
    return app


def _row(page, week):
    return page.locator(f"tr[data-week='{week}']")


def test_the_archive_lists_weeks_with_status_downloads_and_compares_them(archive_app_settings, serve, page):
    settings = archive_app_settings
    server = serve(_app(settings))
    page.goto(server.url + "/snapshots")
    page.wait_for_selector(f"tr[data-week='{WEEK}'] a[data-kind='pdf']")
    assert page.locator("h1").first.inner_text() == "周报归档"
    assert _row(page, WEEK).locator("[data-status]").get_attribute("data-status") == "ok"
    failed = _row(page, FAILED).locator("[data-status]")
    assert failed.get_attribute("data-status") == "failed" and "no occupancy reading" in failed.inner_text()

    archive = Archive(settings.reports_dir)
    for kind in ("html", "pdf", "png", "xlsx", "manifest"):
        href = _row(page, WEEK).locator(f"a[data-kind='{kind}']").get_attribute("href")
        response = page.request.get(server.url + href)
        name = href.rsplit("/", 1)[1]
        assert response.status == 200
        assert response.body() == (archive.scope_dir(WEEK, "city") / name).read_bytes()

    # nothing outside a report's own files is served
    for bad in (f"/snapshots/files/{WEEK}/city/..%2F..%2Fjobs.sqlite", f"/snapshots/files/{WEEK}/city/x.txt",
                "/snapshots/files/..%2F..%2F/city/manifest.json", f"/snapshots/files/{WEEK}/city/%2Fetc%2Fpasswd"):
        response = page.request.get(server.url + bad)
        body = response.body()
        assert response.status == 404 or body.startswith(b"<!DOCTYPE html>"), bad  # the app's page, not a file
        assert b"SQLite format" not in body and b"root:" not in body

    # week over week: the two exported weeks side by side, from their own data
    page.wait_for_selector("[data-kpi='cases.reported']")
    cells = page.locator("[data-kpi='cases.reported'] td").all_inner_texts()
    first = json.loads((archive.scope_dir(EARLIER, "city") / f"{EARLIER}-city.json").read_text(encoding="utf-8"))
    second = json.loads((archive.scope_dir(WEEK, "city") / f"{WEEK}-city.json").read_text(encoding="utf-8"))
    a, b = first["cases"]["kpis"]["reported"]["value"], second["cases"]["kpis"]["reported"]["value"]
    assert cells[1:] == [f"{a:,}", f"{b:,}", f"{b - a:+,}"]
    assert page.locator("[data-kpi='parking.occupancy_week']").count() == 1

    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_export_now_starts_the_last_finished_week(archive_app_settings, serve, page, monkeypatch):
    started = []
    monkeypatch.setattr("callbacks.snapshots._export_in_background", lambda s, week: started.append(week.label))
    server = serve(_app(archive_app_settings))
    page.goto(server.url + "/snapshots?lang=en")
    page.wait_for_selector(f"tr[data-week='{WEEK}']")
    assert page.locator("h1").first.inner_text() == "Weekly report archive"
    page.get_by_role("button", name="Export last week now").click()
    page.wait_for_selector("text=appears in the list when done")
    assert len(started) == 1
    assert page.console_errors == [] and only_local(page.requested) == []


def test_a_district_leader_sees_only_their_district(archive_app_settings, serve, page):
    settings = archive_app_settings
    server = serve(_app(settings, Scope(districts=frozenset({"410105"}), role="district")))
    page.goto(server.url + "/snapshots")
    page.wait_for_selector(f"tr[data-week='{WEEK}'] a[data-kind='pdf']")
    href = _row(page, WEEK).locator("a[data-kind='pdf']").get_attribute("href")
    assert f"/{WEEK}/410105/" in href
    assert page.request.get(server.url + href).status == 200
    assert page.request.get(server.url + f"/snapshots/files/{WEEK}/city/{WEEK}-city.pdf").status == 404
    page.locator("#snap-export").click()  # export now is for city-wide admins
    page.wait_for_selector("text=仅管理员可以立即生成周报")
    assert page.console_errors == [] and only_local(page.requested) == []


# --- a report opened from the archive: its charts, under its own policy ------------------
def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_a_report_opened_from_the_archive_draws_its_charts_sandboxed(archive_app_settings, serve, page):
    """The report's inline plotly.js runs (allowed by its hashes, not by the app's policy),
    every chart the file holds is drawn, and the document is sandboxed: an origin of its
    own, so its scripts cannot read the viewer's session cookie."""
    settings = archive_app_settings
    server = serve(_app(settings))
    page.goto(server.url + "/snapshots")
    page.wait_for_selector(f"tr[data-week='{WEEK}'] a[data-kind='html']")
    href = _row(page, WEEK).locator("a[data-kind='html']").get_attribute("href")
    saved = (Archive(settings.reports_dir).scope_dir(WEEK, "city") / href.rsplit("/", 1)[1]).read_text(encoding="utf-8")
    charts = re.findall(r'<div class="chart" id="([^"]+)"', saved)
    figures = json.loads(re.search(r'<script type="application/json" id="report-figures">(.*?)</script>',
                                   saved, re.S).group(1))
    assert len(charts) > 0 and sorted(charts) == sorted(figures)

    page.context.add_cookies([{"name": "probe", "value": "secret", "url": server.url}])
    response = page.goto(server.url + href)
    assert response.status == 200
    policy = _directives(response.headers["content-security-policy"])
    assert policy["sandbox"] == ["allow-scripts"]
    assert "'self'" not in policy["script-src"] and "'unsafe-inline'" not in policy["script-src"]
    assert all(s.startswith("'sha256-") for s in policy["script-src"])
    wait_until(page, "() => document.body.getAttribute('data-ready') === '1'", timeout=30)
    drawn = page.evaluate("() => Array.from(document.querySelectorAll('div.chart'))"
                          ".filter(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg .trace'))"
                          ".map(d => d.id)")
    assert sorted(drawn) == sorted(charts)
    cookie = page.evaluate("() => { try { return 'read: ' + document.cookie; } catch (e) { return 'refused'; } }")
    assert cookie == "refused"
    assert page.console_errors == []
    assert only_local(page.requested) == []


def test_the_apps_own_pages_keep_their_strict_policy(archive_app_settings, serve, page):
    server = serve(_app(archive_app_settings))
    policies = {}
    for path in ("/", "/browse", "/snapshots", "/wall", f"/snapshots/files/{WEEK}/city/{WEEK}-city.png"):
        response = page.request.get(server.url + path)
        assert response.status == 200, path
        policies[path] = response.headers["content-security-policy"]
    assert len(set(policies.values())) == 1, policies  # one policy for every page of the app
    policy = _directives(policies["/"])
    assert "sandbox" not in policy
    assert policy["script-src"][0] == "'self'" and all(s.startswith("'sha256-") for s in policy["script-src"][1:])
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
