"""Headless Chromium for the report's PDF and the wall's PNG.

The PDF is the HTML report printed by Chromium (A4 landscape, one section per page,
charts as vectors, the system's CJK fonts). The PNG is the live wall served by an app
of its own on a loopback port and photographed once every panel is drawn. Several pages
work at once (Chromium draws in its own processes while Python waits), which is most of
an export's time.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# every graph panel drawn and the cards filled (as bench/bench_wall.py checks)
PANELS_READY = """() => { const graphs = Array.from(document.querySelectorAll('.panel-graph'));
  return document.querySelector('#card-open_cases .card-value[data-value]') !== null &&
    graphs.length > 0 && graphs.every(g => { const gd = g.querySelector('.js-plotly-plot');
      return gd && gd.data && gd.data.length > 0; }); }"""
WALL_SIZE = {"width": 1920, "height": 1080}
ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]
TIMEOUT_MS = 60_000  # for a page to load, a report's charts or the wall's panels to be drawn
LOAD_REPORT = """([title, body]) => { document.title = title; document.body.removeAttribute('data-ready');
    document.body.innerHTML = body; return drawReport(); }"""


class RenderError(RuntimeError):
    """A file could not be rendered completely (the report is then refused)."""


async def _page(context, timeout_ms: int):
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    page.errors = []  # uncaught exceptions refuse the file; console messages are only logged
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and log.warning("browser console: %s", m.text[:300]))
    return page


async def _in_parallel(executable: str, workers: int, jobs: list, options: dict, setup, work) -> None:
    """Split `jobs` over `workers` pages of one browser, each in a context of its own (its
    own renderer process, so they draw in parallel): setup(page) once per page, then
    work(page, job) for each of its jobs in turn."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=ARGS)
        try:
            async def worker(share):
                context = await browser.new_context(**options)
                try:
                    page = await _page(context, TIMEOUT_MS)
                    await setup(page)
                    for job in share:
                        await work(page, job)
                finally:
                    await context.close()
            await asyncio.gather(*(worker(jobs[i::workers]) for i in range(min(workers, len(jobs)))))
        finally:
            await browser.close()


def _run(coro) -> None:
    """Run the browser work on a thread of its own: the caller may already have an event
    loop (Playwright's sync API, a server), and asyncio.run cannot nest."""
    failure: list[BaseException] = []

    def target():
        try:
            asyncio.run(coro)
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=target, name="weekly-browser")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def print_pdfs(executable: str, shell: str, jobs: list[tuple[str, str, Path]], *, workers: int = 2) -> None:
    """Print reports to A4 landscape PDFs. `shell` is a page holding plotly.js, the style and
    a `drawReport()` function (plotly.js is parsed once per page, not once per report); each
    job (title, body HTML, pdf path) is loaded into it and printed once its charts are drawn."""
    async def setup(page):
        await page.set_content(shell, wait_until="load")
        await page.emulate_media(media="print")

    async def work(page, job):
        title, body, pdf_path = job
        await page.evaluate(LOAD_REPORT, [title, body])
        await page.wait_for_selector("body[data-ready='1']", state="attached")
        if page.errors:
            raise RenderError(f"the report's page failed in the browser: {page.errors[0][:200]}")
        await page.pdf(path=str(pdf_path), format="A4", landscape=True, print_background=True,
                       prefer_css_page_size=True)

    _run(_in_parallel(executable, workers, jobs, {"locale": "zh-CN"}, setup, work))


def photograph(executable: str, jobs: list[tuple[str, Path]], clock: dt.datetime, *, workers: int = 3) -> None:
    """1920x1080 pictures of wall URLs (url, png path), with the browser's clock at `clock`
    (the wall's header shows that time), each taken once every panel is drawn."""
    async def setup(page):
        await page.clock.set_fixed_time(clock)

    async def work(page, job):
        url, png_path = job
        await page.goto(url, wait_until="load")
        await page.wait_for_function(PANELS_READY, polling=100)  # not every frame: it competes with drawing
        await page.wait_for_timeout(150)  # let the last transitions settle
        if page.errors:
            raise RenderError(f"the wall failed in the browser: {page.errors[0][:200]}")
        await page.screenshot(path=str(png_path), full_page=False)

    # our own headless browser on our own loopback app: the app's Content-Security-Policy is
    # for people's browsers, and would forbid the readiness check's evaluation
    _run(_in_parallel(executable, workers, jobs, {"viewport": WALL_SIZE, "locale": "zh-CN", "bypass_csp": True},
                      setup, work))
