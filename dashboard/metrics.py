"""`/metrics` in Prometheus text format, the same figures whichever worker answers.

Under gunicorn a scrape lands on any worker, but only the leader polls. So nothing is
kept in a process: the poller adds its figures to a small hash in the cache (Redis,
or the host-local folder), counters are incremented there too, and the collector
reads them at scrape time. prometheus-client's multiprocess mode would need an
environment variable set before import and a gunicorn hook; this needs neither.

The figures carry no case data: durations, counts, ages and section statuses only.

`rows changed`: a section callable that knows how many rows its poll read past its
watermark calls `report_rows_changed(n)` while it runs; the poller adds up what the
sections of one poll reported. Polls in which no section reported leave the
figure untouched (the metric is absent rather than a made-up zero).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Response, request
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

POLL, COUNTERS, LEADERS = "poll", "counters", "leaders"  # hash names in the cache
LEADER_MARKS_KEPT = 3600.0  # seconds an expired leader mark stays before the next leader drops it
REPORT_WEEKS_CHECKED = 8  # the newest weeks whose run records /metrics reads
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RESULTS = ("ok", "partial", "failed")

_rows_changed: ContextVar[list | None] = ContextVar("rows_changed", default=None)


def report_rows_changed(n: int) -> None:
    """Called by a section during a poll: how many store rows this poll read anew.
    Outside a poll (a KPI function called from a test or a page) it does nothing."""
    acc = _rows_changed.get()
    if acc is not None:
        acc.append(int(n))


@contextmanager
def collecting_rows_changed():
    """Around one section call; yields the list the section's reports land in."""
    acc: list[int] = []
    token = _rows_changed.set(acc)
    try:
        yield acc
    finally:
        _rows_changed.reset(token)


def record_poll(cache, *, seconds: float, result: str, rows_changed: int | None) -> None:
    """The leader's figures for one poll, added where every worker can read them."""
    amounts = {"count": 1, "sum": seconds, f"result:{result}": 1}
    amounts.update({f"le:{b}": 1 for b in BUCKETS if seconds <= b})  # cumulative buckets
    if rows_changed is not None:
        amounts["rows_changed_total"] = rows_changed
    cache.add(POLL, amounts)
    if rows_changed is not None:
        cache.put_fields(POLL, {"rows_changed_last": rows_changed})


def count_event(cache, kind: str, n: int = 1) -> None:
    """A poll's events that need an operator's eye: "fenced" (a write of the KPI state
    refused, another process owns it) and "selfcheck_mismatches" (the snapshot's totals
    differed from the cases'; the state is rebuilt)."""
    try:
        cache.add(COUNTERS, {kind: n})
    except OSError as exc:
        log.warning("%s not counted: %s", kind, exc)


def count_pruned(cache, table: str, n: int) -> None:
    """Rows (or report versions) the prune removed, per table: cc_pruned_rows_total."""
    if n:
        try:
            cache.add(COUNTERS, {f"pruned:{table}": n})
        except OSError as exc:
            log.warning("pruned rows of %s not counted: %s", table, exc)


def count_skipped_poll(cache) -> None:
    """A poll tick that fell due while the previous poll still ran (and was dropped)."""
    cache.add(POLL, {"skipped": 1})


def mark_leader(cache, holder: str, until: float) -> None:
    """The poller leader says "I lead until `until` (epoch seconds)" at each renewal; the
    collector counts the marks still valid, so two leaders at once show as 2, none as 0.
    Marks of processes gone for an hour are dropped here."""
    now = time.time()
    old = [h for h, v in cache.fields(LEADERS).items() if h != holder and float(v) < now - LEADER_MARKS_KEPT]
    if old:
        cache.drop_fields(LEADERS, old)
    cache.put_fields(LEADERS, {holder: repr(until)})


def unmark_leader(cache, holder: str) -> None:
    """A leader that stops or resigns withdraws its mark (one that dies lets it expire)."""
    cache.drop_fields(LEADERS, [holder])


def report_figures(reports_dir) -> tuple[int, float | None]:
    """(weeks among the newest REPORT_WEEKS_CHECKED whose latest export failed, time of the
    newest successful export or None), from the run records in REPORTS_DIR."""
    from dashboard.weekly.archive import Archive

    archive, failed, last_ok = Archive(reports_dir), 0, None
    for week in archive.weeks()[:REPORT_WEEKS_CHECKED]:
        run = archive.run(week) or {}
        if run.get("status") in ("failed", "refused"):
            failed += 1
        elif run.get("status") == "ok" and run.get("updated_at"):
            at = dt.datetime.fromisoformat(run["updated_at"]).timestamp()
            last_ok = at if last_ok is None else max(last_ok, at)
    return failed, last_ok


def count_refresh(cache=None) -> None:
    """Count one screen refresh; callbacks call it on each interval tick. A metric must
    never break a screen, so a failing store is logged and ignored."""
    if cache is None:
        from dashboard.services import services

        cache = services().cache
    try:
        cache.add(COUNTERS, {"refresh_requests": 1})
    except OSError as exc:
        log.debug("refresh not counted: %s", exc)


class SnapshotCollector:
    def __init__(self, cache, reports_dir=None):
        self.cache = cache
        self.reports_dir = reports_dir

    def collect(self):
        poll = {k: float(v) for k, v in self.cache.fields(POLL).items()}
        counters = {k: float(v) for k, v in self.cache.fields(COUNTERS).items()}
        head = self.cache.head()
        now = dt.datetime.now(dt.timezone.utc)

        count = poll.get("count", 0.0)
        yield HistogramMetricFamily(
            "cc_poll_duration_seconds", "Time one poll took to compute the snapshot.",
            buckets=[(repr(b), poll.get(f"le:{b}", 0.0)) for b in BUCKETS] + [("+Inf", count)],
            sum_value=poll.get("sum", 0.0))

        polls = CounterMetricFamily("cc_polls", "Polls by result: ok, partial (some sections "
                                    "failed), failed (every section failed).", labels=["result"])
        for r in RESULTS:
            polls.add_metric([r], poll.get(f"result:{r}", 0.0))
        yield polls

        yield CounterMetricFamily("cc_polls_skipped", "Poll ticks dropped because the previous "
                                  "poll was still running (polls never overlap).",
                                  value=poll.get("skipped", 0.0))

        age = GaugeMetricFamily("cc_snapshot_age_seconds", "Seconds since the last poll "
                                "published the snapshot (absent before the first poll).")
        data_age = GaugeMetricFamily("cc_data_age_seconds", "Seconds since the newest change "
                                     "in the store that the snapshot saw.")
        sections = GaugeMetricFamily("cc_snapshot_sections", "Sections of the current "
                                     "snapshot by status.", labels=["status"])
        if head is not None:
            age.add_metric([], head.age(now))
            if head.data_as_of is not None:
                data_age.add_metric([], (now - head.data_as_of).total_seconds())
            for status in ("fresh", "stale", "error", "empty"):
                sections.add_metric([status], sum(1 for s in head.statuses.values() if s == status))
        yield from (age, data_age, sections)

        rows = GaugeMetricFamily("cc_poll_rows_changed", "Store rows the last poll read anew, "
                                 "as reported by its sections.")
        rows_total = CounterMetricFamily("cc_rows_changed", "Store rows read anew, all polls.")
        if "rows_changed_last" in poll:
            rows.add_metric([], poll["rows_changed_last"])
            rows_total.add_metric([], poll.get("rows_changed_total", 0.0))
        yield from (rows, rows_total)

        yield CounterMetricFamily("cc_cache_fallbacks", "Times a process found Redis "
                                  "unreachable and served from its host-local cache.",
                                  value=counters.get("cache_fallbacks", 0.0))
        yield GaugeMetricFamily("cc_cache_fallback_active", "1 while the answering process "
                                "serves from its host-local cache because Redis is unreachable.",
                                value=1.0 if self.cache.using_fallback else 0.0)
        yield CounterMetricFamily("cc_selfcheck_mismatches", "Self-checks that found the snapshot's "
                                  "totals (open cases, reported today) differing from counts on the "
                                  "cases; each is followed by a rebuild of the KPI state.",
                                  value=counters.get("selfcheck_mismatches", 0.0))
        yield CounterMetricFamily("cc_fenced_writes", "Writes of the KPI state refused because "
                                  "another process had become its owner.",
                                  value=counters.get("fenced", 0.0))
        now_s = time.time()
        yield GaugeMetricFamily("cc_poller_leaders", "Processes that hold the poller's leadership "
                                "now, by their own renewed marks: 1 is right, 0 means nobody polls, "
                                "2 or more means two writers.",
                                value=sum(1 for v in self.cache.fields(LEADERS).values() if float(v) > now_s))
        if self.reports_dir is not None:
            failed, last_ok = report_figures(self.reports_dir)
            yield GaugeMetricFamily("cc_report_failed_weeks", "Recent weeks whose latest weekly "
                                    "export failed (the scheduler retries; see /snapshots).", value=failed)
            if last_ok is not None:
                yield GaugeMetricFamily("cc_report_last_success_timestamp_seconds", "When the newest "
                                        "weekly export succeeded (Unix time).", value=last_ok)
        pruned = CounterMetricFamily("cc_pruned_rows", "Rows removed by `python -m dashboard prune`, "
                                     "per table (report_versions: folders of earlier report versions).",
                                     labels=["table"])
        for key, value in sorted(counters.items()):
            if key.startswith("pruned:"):
                pruned.add_metric([key.removeprefix("pruned:")], value)
        yield pruned
        yield CounterMetricFamily("cc_refresh_requests", "Screen refreshes served.",
                                  value=counters.get("refresh_requests", 0.0))
        yield CounterMetricFamily("cc_screen_renders", "Screens rendered from a new snapshot "
                                  "version (once per version and view, shared by all displays).",
                                  value=counters.get("renders", 0.0))


def register(server, cache, *, allow=(), token: str = "", reports_dir=None) -> None:
    """`allow`: client networks that may scrape (empty: any); `token`: a bearer token;
    `reports_dir`: the weekly reports' folder, for the report figures."""
    import hmac
    import ipaddress

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(cache, reports_dir))

    @server.get("/metrics")
    def metrics():
        if allow:
            try:
                client = ipaddress.ip_address(request.remote_addr or "")
            except ValueError:
                client = None
            if client is None or not any(client in net for net in allow):
                return Response("forbidden\n", status=403, content_type="text/plain")
        if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return Response("unauthorized\n", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(registry), content_type=content_type)
