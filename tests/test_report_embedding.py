"""The weekly report embeds its data as JSON in <script> elements: no text of a city's data
may change how the page parses. One address "<!--<script>" used to make the parser swallow
the rest of the page, and every scope's export was refused."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from dashboard.cli import main
from dashboard.weekly.archive import Archive, file_name
from datasource import schema
from datasource.engine import make_engine
from layouts.weekly.html import ReportPage, script_json
from tests.weekly_helpers import WEEK, embedded_report, seeded_store

HOSTILE = ["<!--<script>", "</script>", "<script>", "</SCRIPT >x", "<!--", "-->", "]]>", "<![CDATA[",
           "\u2028", "\u2029", "\"'&", "&amp;&lt;", "{{ x }}", "${x}", "\\u003c", "</style><b>", "\x00", "ünï中文"]
AFTER = '<section class="page" id="after">after</section>'


def page_of(value) -> ReportPage:
    return ReportPage(title="t", lang="zh-CN", body=AFTER, data=script_json(value),
                      figures=script_json({"f": {"data": [{"x": [1], "name": value}], "layout": {}}}))


class Elements(HTMLParser):
    """The text of each element with an id, as an HTML parser splits the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.open = {}, None

    def handle_starttag(self, tag, attrs):
        self.open = dict(attrs).get("id")
        if self.open:
            self.text[self.open] = ""

    def handle_endtag(self, tag):
        self.open = None

    def handle_data(self, data):
        if self.open:
            self.text[self.open] += data


@pytest.mark.parametrize("s", HOSTILE)
def test_embedded_json_holds_nothing_a_parser_acts_on(s):
    page = page_of({"address": s})
    for raw in (page.data, page.figures):
        assert not set(raw) & set("<>&\u2028\u2029"), raw
    parsed = Elements()
    parsed.feed(page.html())
    assert json.loads(parsed.text["report-data"]) == {"address": s}
    assert json.loads(parsed.text["report-figures"])["f"]["data"][0]["name"] == {"address": s}
    assert parsed.text["after"] == "after"


def test_a_browser_parses_every_hostile_string_intact(browser):
    """Chromium, both ways the report is loaded: as a file (the HTML) and into the print
    shell's body (innerHTML, as the PDF is made)."""
    context = browser.new_context()
    pg = context.new_page()
    read = """() => ({data: JSON.parse(document.getElementById('report-data').textContent),
        figs: JSON.parse(document.getElementById('report-figures').textContent),
        after: document.getElementById('after') && document.getElementById('after').textContent,
        scripts: document.scripts.length})"""
    try:
        for s in HOSTILE:
            value = {"address": s, "list": [s, {"k": s}]}
            page = page_of(value)
            pg.set_content(f"<!DOCTYPE html><html><head></head><body>{page.body_with_data()}</body></html>")
            got = pg.evaluate(read)
            assert got["data"] == value and got["after"] == "after", repr(s)
            assert got["figs"]["f"]["data"][0]["name"] == value and got["scripts"] == 2, repr(s)
            pg.set_content("<!DOCTYPE html><html><head></head><body></body></html>")
            pg.evaluate("(body) => { document.body.innerHTML = body; }", page.body_with_data())
            got = pg.evaluate(read)
            assert got["data"]["address"] == s and got["after"] == "after", repr(s)
    finally:
        context.close()


@pytest.mark.slow
def test_a_hostile_address_on_an_overdue_case_does_not_stop_the_export(request, tmp_path, monkeypatch, browser):
    url = seeded_store("sqlite", request, tmp_path)
    engine = make_engine(url)
    C = schema.Case
    # the issue's address on every case: nothing after it (such as a "-->") closes what it opens
    with engine.begin() as conn:
        conn.execute(C.__table__.update().values(address="<!--<script>"))
    engine.dispose()
    reports = tmp_path / "reports"
    for name, value in (("DATABASE_URL", url), ("REPORTS_DIR", str(reports)), ("REDIS_URL", ""),
                        ("LOCAL_CACHE_DIR", str(tmp_path / "cache"))):
        monkeypatch.setenv(name, value)
    assert main(["snapshot", "--week", WEEK, "--scope", "city"]) == 0

    html_path = Archive(reports).scope_dir(WEEK, "city") / file_name(WEEK, "city", "html")
    html = html_path.read_text(encoding="utf-8")
    report = embedded_report(html)
    shown_in_data = {r["address"] for r in report["cases"]["top_overdue"]}
    assert shown_in_data == {"<!--<script>"}
    context = browser.new_context()
    try:
        pg = context.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(html_path.as_uri())
        pg.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
        charts = pg.evaluate("() => Array.from(document.querySelectorAll('.chart')).map("
                             "c => c.querySelector('.main-svg') !== null)")
        assert charts and all(charts), charts
        shown = pg.evaluate("() => Array.from(document.querySelectorAll('td.text')).map(td => td.textContent)")
        assert shown_in_data <= set(shown)  # the addresses are shown as text in the overdue table
        assert errors == []
    finally:
        context.close()
