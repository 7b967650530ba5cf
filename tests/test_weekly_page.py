"""`/snapshots` in a real Chromium: the archive's weeks with their status and downloads,
the week-over-week view, "export now", the language switch, and scope narrowing."""
from __future__ import annotations

import json

import pytest

from dashboard import create_app
from dashboard.scope import Scope
from dashboard.weekly.archive import Archive
from dashboard.weekly.runner import export_week
from tests.conftest import only_local
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
    assert page.locator("h2").first.inner_text() == "周报归档"
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
    assert page.locator("h2").first.inner_text() == "Weekly report archive"
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
