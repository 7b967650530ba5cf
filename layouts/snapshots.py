"""`/snapshots`: the weekly reports' archive (weeks, status, downloads), a week-over-week
view and "export now". The layout is a skeleton; callbacks/snapshots.py fills it."""
from __future__ import annotations

from dash import dcc, html

from layouts.i18n import pick_language
from layouts.nav import nav_bar
from layouts.weekly.labels import fmt, fmt_delta
from layouts.weekly.labels import t as rt

PAGE_STRINGS: dict[str, dict[str, str]] = {
    "archive_title": {"zh-CN": "周报归档", "en": "Weekly report archive"},
    "report_of": {"zh-CN": "报告范围", "en": "Report of"},
    "week": {"zh-CN": "周次", "en": "Week"},
    "dates": {"zh-CN": "日期", "en": "Dates"},
    "status": {"zh-CN": "状态", "en": "Status"},
    "files": {"zh-CN": "下载", "en": "Downloads"},
    "st_ok": {"zh-CN": "已生成", "en": "Done"},
    "st_failed": {"zh-CN": "生成失败：{error}", "en": "Failed: {error}"},
    "st_running": {"zh-CN": "生成中（自 {since}）", "en": "Running since {since}"},
    "st_missing": {"zh-CN": "该范围无报告", "en": "No report for this scope"},
    "earlier_kept": {"zh-CN": "（仍可下载上一版本）", "en": "(the earlier version is still available)"},
    "versions": {"zh-CN": "历史版本 {n} 个", "en": "{n} earlier version(s)"},
    "no_weeks": {"zh-CN": "暂无周报。", "en": "No weekly report yet."},
    "compare_title": {"zh-CN": "周对比", "en": "Week over week"},
    "compare_hint": {"zh-CN": "选择两周，对比主要指标", "en": "Pick two weeks to compare their KPIs"},
    "metric": {"zh-CN": "指标", "en": "KPI"},
    "difference": {"zh-CN": "差值（后者减前者）", "en": "Difference (second minus first)"},
    "export_now": {"zh-CN": "立即生成上周周报", "en": "Export last week now"},
    "export_started": {"zh-CN": "已开始生成 {week} 周报，完成后将出现在列表中。",
                       "en": "Exporting {week}; it appears in the list when done."},
    "export_denied": {"zh-CN": "仅管理员可以立即生成周报。", "en": "Only administrators can export now."},
    "not_allowed": {"zh-CN": "无权查看该范围的报告。", "en": "You may not see that scope's reports."},
    "f_html": {"zh-CN": "网页", "en": "HTML"}, "f_pdf": {"zh-CN": "PDF", "en": "PDF"},
    "f_png": {"zh-CN": "大屏截图", "en": "Wall PNG"}, "f_xlsx": {"zh-CN": "Excel", "en": "XLSX"},
    "f_manifest": {"zh-CN": "清单", "en": "Manifest"},
}

# ids
LOCATION, INTERVAL, NOTICE, SCOPE, TABLE = "snap-location", "snap-interval", "snap-notice", "snap-scope", "snap-table"
WEEK_A, WEEK_B, COMPARE = "snap-week-a", "snap-week-b", "snap-compare"
EXPORT, EXPORT_STATUS, TITLE = "snap-export", "snap-export-status", "snap-title"

COMPARE_ROWS = (("cases", ("reported", "filed", "closed", "closure_rate", "on_time_closure_rate", "handling_rate",
                           "on_time_handling_rate", "rework_rate", "extension_rate", "avg_handle_hours",
                           "avg_close_hours", "open_at_end", "overdue_at_end")),
                ("enterprise", ("visits", "enterprises_visited", "problems_raised", "problems_resolved",
                                "resolution_rate", "avg_resolve_days")),
                ("parking", ("occupancy_week", "added_spaces_week", "revitalised_spaces_week",
                             "shared_spaces_week")))
FILE_ORDER = ("html", "pdf", "png", "xlsx")


def t(key: str, lang: str, **fmt_args) -> str:
    if key in PAGE_STRINGS:
        text = PAGE_STRINGS[key].get(lang) or PAGE_STRINGS[key]["zh-CN"]
        return text.format(**fmt_args) if fmt_args else text
    return rt(key, lang, **fmt_args)


def layout_factory(settings, user=None):
    default_lang = settings["DASHBOARD_LANGUAGE"]

    def layout(lang=None, **_query):
        lang, _ = pick_language(lang if isinstance(lang, str) else None, default_lang)
        return html.Div([
            dcc.Location(id=LOCATION, refresh=False),
            dcc.Interval(id=INTERVAL, interval=5000),
            nav_bar(settings, "weekly", lang, here="/snapshots", user=user),
            html.Main([
                html.H1(t("archive_title", lang), id=TITLE, className="page-title"),
                html.Div(id=NOTICE, className="notice", role="status"),
                html.Div([html.Label(t("report_of", lang), id=f"{SCOPE}-label", htmlFor=SCOPE),
                          dcc.Dropdown(id=SCOPE, clearable=False, searchable=False, className="snap-dropdown"),
                          html.Button(t("export_now", lang), id=EXPORT, className="app-button", n_clicks=0),
                          html.Span(id=EXPORT_STATUS, className="snap-export-status", role="status")],
                         className="snap-toolbar"),
                html.Div(id=TABLE, className="snap-table"),
                html.H2(t("compare_title", lang), id=f"{COMPARE}-title"),
                html.Div([dcc.Dropdown(id=WEEK_A, clearable=False, className="snap-dropdown"),
                          dcc.Dropdown(id=WEEK_B, clearable=False, className="snap-dropdown")],
                         className="snap-toolbar"),
                html.Div(id=COMPARE, className="snap-compare"),
            ], className="snap-body"),
        ], className="snap-page app-page", lang=lang)

    return layout


def _status(row: dict, lang: str) -> html.Span:
    run, has = row.get("run") or {}, row["files"] is not None
    status = run.get("status") or ("ok" if has else "missing")
    if status == "failed":
        text = t("st_failed", lang, error=run.get("error") or "?") + (t("earlier_kept", lang) if has else "")
    elif status == "running":
        text = t("st_running", lang, since=row.get("since") or "?")
    elif status == "ok" and has:
        text = t("st_ok", lang)
    else:
        status, text = "missing", t("st_missing", lang)
    return html.Span(text, className=f"snap-status snap-{status}", **{"data-status": status})


def weeks_table(rows: list[dict], lang: str) -> html.Div:
    """rows: {week, first, last, run, since, files: {kind: url} or None, versions}"""
    if not rows:
        return html.P(t("no_weeks", lang))
    body = []
    for r in rows:
        links = []
        if r["files"]:
            for kind in FILE_ORDER + ("manifest",):
                if kind in r["files"]:
                    links.append(html.A(t(f"f_{kind}", lang), href=r["files"][kind], className="snap-link",
                                        **{"data-kind": kind}))
            if r.get("versions"):
                links.append(html.Span(t("versions", lang, n=r["versions"]), className="snap-versions"))
        body.append(html.Tr([html.Td(r["week"], className="snap-week"), html.Td(f"{r['first']} – {r['last']}"),
                             html.Td(_status(r, lang)), html.Td(links)], **{"data-week": r["week"]}))
    return html.Table([html.Thead(html.Tr([html.Th(t(k, lang)) for k in ("week", "dates", "status", "files")])),
                       html.Tbody(body)])


def compare_table(first: dict | None, second: dict | None, labels: tuple[str, str], kinds: dict,
                  lang: str) -> html.Div:
    """The KPIs of two reports side by side (values from their embedded data)."""
    if first is None or second is None:
        return html.P(t("compare_hint", lang))
    rows = []
    for section, keys in COMPARE_ROWS:
        rows.append(html.Tr(html.Th(t(f"sec_{section}", lang), colSpan=4), className="snap-group"))
        if not (first[section].get("recorded", True) or second[section].get("recorded", True)):
            rows.append(html.Tr(html.Td(t("not_recorded", lang), colSpan=4), **{"data-kpi": f"{section}.not_recorded"}))
            continue
        for key in keys:
            ca = (first[section].get("kpis", {}).get(key)) or {}
            cb = (second[section].get("kpis", {}).get(key)) or {}
            a, b = ca.get("value"), cb.get("value")
            diff = b - a if a is not None and b is not None else None

            def cell(c, v):  # a figure the city's data does not record says so
                if c.get("not_recorded"):
                    return html.Td(f"— {t('not_recorded', lang)}", title=t("not_recorded_hint", lang),
                                   **{"data-not-recorded": "true"})
                return html.Td(fmt(v, kinds[key]))
            rows.append(html.Tr([html.Td(t(key, lang)), cell(ca, a), cell(cb, b),
                                 html.Td(fmt_delta(diff, kinds[key], lang))],
                                **{"data-kpi": f"{section}.{key}"}))
    head = html.Tr([html.Th(t("metric", lang)), html.Th(labels[0]), html.Th(labels[1]), html.Th(t("difference", lang))])
    return html.Table([html.Thead(head), html.Tbody(rows)])
