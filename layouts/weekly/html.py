"""The weekly report as one self-contained HTML file (plotly.js inlined, no request leaves
the file), laid out in A4 landscape pages so that printing it gives the PDF.

The report's data is embedded as JSON in <script type="application/json" id="report-data">.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from html import escape

from layouts.i18n import t_or
from layouts.weekly import figures as fg
from layouts.weekly.labels import fmt, fmt_delta, t

CSS = """
@page { size: A4 landscape; margin: 9mm; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; color: #1d2733;
       font-size: 11px; background: #eef1f5; }
.page { width: 279mm; height: 188mm; overflow: hidden; background: #fff; padding: 4mm 6mm;
        page-break-after: always; break-after: page; position: relative; }
.page:last-of-type { page-break-after: auto; break-after: auto; }
@media screen { .page { margin: 12px auto; box-shadow: 0 1px 4px rgba(0,0,0,.2); } }
@media print { body { background: #fff; } }
h1 { font-size: 22px; margin: 0 0 2px; color: #123a6b; }
h2 { font-size: 16px; margin: 0 0 6px; color: #123a6b; border-left: 4px solid #1f5fa8; padding-left: 6px; }
.meta { color: #5a6675; margin-bottom: 8px; }
.note { color: #5a6675; font-size: 10px; position: absolute; bottom: 3mm; left: 6mm; right: 6mm; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 6px; margin-bottom: 8px; }
.card { border: 1px solid #d5dce5; border-radius: 4px; padding: 5px 7px; }
.card .label { color: #5a6675; font-size: 10.5px; }
.card .value { font-size: 19px; font-weight: 700; }
.card .delta { font-size: 10px; color: #5a6675; }
.group { font-size: 13px; font-weight: 700; margin: 6px 0 4px; color: #123a6b; }
.charts { display: flex; gap: 8px; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #d5dce5; padding: 2px 4px; text-align: right; vertical-align: top; line-height: 1.25; }
th { background: #eef3f9; font-weight: 600; text-align: center; }
td.text { text-align: left; }
td .d { display: block; color: #6b7785; font-size: 9.5px; }
.not-recorded { color: #6b7785; }
tr.total td { font-weight: 700; background: #f7f9fc; }
.not-recorded { color: #5a6675; font-size: 13px; border: 1px dashed #c5ccd6; border-radius: 4px; padding: 8px 10px;
                margin: 4px 0 8px; }
"""

SUMMARY_CASES = ("reported", "filed", "closed", "closure_rate", "on_time_closure_rate", "handling_rate",
                 "on_time_handling_rate", "rework_rate", "extension_rate", "avg_handle_hours",
                 "avg_close_hours", "open_at_end", "overdue_at_end")
SUMMARY_ENTERPRISE = ("visits", "enterprises_visited", "problems_raised", "problems_resolved", "resolution_rate")
SUMMARY_PARKING = ("occupancy_week", "added_spaces_week", "revitalised_spaces_week", "shared_spaces_week")
CASE_COLUMNS = SUMMARY_CASES
ENT_COLUMNS = ("visits", "enterprises_visited", "problems_raised", "problems_resolved", "resolution_rate",
               "avg_resolve_days")
PARK_COLUMNS = ("occupancy_week", "added_spaces_week", "revitalised_spaces_week", "shared_spaces_week")


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def csp_hash(script: str) -> str:
    """The Content-Security-Policy source that allows an inline script with this text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


@functools.lru_cache(maxsize=1)
def _plotly_hash() -> str:
    return csp_hash(plotly_js())


# Characters that could change how the page around a <script> element parses ("</script>",
# "<!--<script>", which makes the parser swallow everything after it) or end a JS string
# (U+2028/U+2029), written as JSON escapes: JSON.parse gives the same text back.
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value) -> str:
    """JSON safe inside a <script> element, whatever its strings hold."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).translate(_SCRIPT_ESCAPES)


def _nr(lang: str) -> str:
    """The attributes of a value the city's data does not record (printed: said in words)."""
    return f' class="not-recorded" data-not-recorded="true" title="{escape(t("not_recorded_hint", lang))}"'


def _card(label: str, cmp: dict, kind: str, lang: str) -> str:
    if cmp.get("not_recorded"):
        return (f'<div class="card"><div class="label">{escape(label)}</div>'
                f'<div class="value"{_nr(lang)}>—</div>'
                f'<div class="delta">{t("not_recorded", lang)}</div></div>')
    prev = t("not_recorded", lang) if cmp.get("prev_not_recorded") else fmt(cmp.get("prev"), kind)
    return (f'<div class="card"><div class="label">{escape(label)}</div>'
            f'<div class="value">{fmt(cmp.get("value"), kind)}</div>'
            f'<div class="delta">{t("vs_prev", lang)} {fmt_delta(cmp.get("delta"), kind, lang)}'
            f' · {t("last_week", lang)} {prev}</div></div>')


def _cards(block: dict, keys: tuple, kinds: dict, lang: str) -> str:
    return '<div class="cards">' + "".join(_card(t(k, lang), block.get(k) or {}, kinds[k], lang) for k in keys) + "</div>"


def _cell(cmp: dict | None, kind: str, lang: str) -> str:
    cmp = cmp or {}
    if cmp.get("not_recorded"):
        return f'<td{_nr(lang)}>—<span class="d">{t("not_recorded", lang)}</span></td>'
    return (f'<td>{fmt(cmp.get("value"), kind)}'
            f'<span class="d">{fmt_delta(cmp.get("delta"), kind, lang, short=True)}</span></td>')


def _district_table(rows: dict, total: dict | None, keys: tuple, kinds: dict, names: dict, lang: str,
                    extra: tuple = ()) -> str:
    head = "".join(f"<th>{escape(t(k, lang))}</th>" for k in (("name",) + extra + keys))
    body = []
    for code, block in list(rows.items()) + ([("city", total)] if total is not None else []):
        cls = ' class="total"' if code == "city" else ""
        cells = [f'<td class="text">{escape(names.get(code, code))}</td>']
        cells += [f"<td>{fmt(block.get(k), kinds[k])}</td>" for k in extra]
        cells += [_cell(block.get(k), kinds[k], lang) for k in keys]
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<div class="meta">{t("table_note", lang)}</div>')


def _overdue_table(rows: list[dict], names: dict, categories: dict, lang: str, tz) -> str:
    import datetime as dt

    if not rows:
        return f"<p>{t('none', lang)}</p>"
    head = "".join(f"<th>{t(k, lang)}</th>" for k in ("case_no", "name", "category", "stage", "address",
                                                       "deadline", "overdue_hours"))
    body = []
    for r in rows:
        deadline = dt.datetime.fromisoformat(r["deadline_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        body.append("<tr>" + "".join([
            f'<td class="text">{escape(r["external_id"])}</td>',
            f'<td class="text">{escape(names.get(r["district"], r["district"]))}</td>',
            f'<td class="text">{escape(categories.get(r["category"], r["category"]))}</td>',
            f'<td class="text">{escape(t_or("stage_" + r["status"], lang, r["status"]))}</td>',
            f'<td class="text">{escape(r["address"] or "")}</td>',
            f"<td>{deadline}</td>", f'<td>{r["overdue_hours"]:,.1f}</td>']) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _chart(fig_id: str) -> str:
    return f'<div class="chart" id="{fig_id}"></div>'


def _not_recorded(lang: str) -> str:
    return (f'<div class="not-recorded" data-not-recorded="1"><b>{t("not_recorded", lang)}</b> · '
            f'{t("not_recorded_note", lang)}</div>')


def recorded(report: dict, subject: str) -> bool:
    """Whether the city records the subject (reports made before profiles record them all)."""
    return report[subject].get("recorded", True)


def render_report(report: dict, *, kinds: dict, title: str, categories: dict, tz, lang: str = "zh-CN") -> "ReportPage":
    """The whole report. `kinds` says how each metric is written (count, rate, number);
    `categories` maps category codes to names."""
    names = {d["code"]: (d["name_en"] if lang == "en" else d["short_zh"]) for d in report["districts"]}
    names["city"] = t("total", lang)
    city = report["scope"] == "city"
    has = {s: recorded(report, s) for s in ("cases", "enterprise", "parking")}
    figs = {}
    if has["cases"]:
        figs.update({"f-daily": fg.daily_cases(report, lang), "f-stage": fg.open_by_stage(report, lang),
                     "f-ageing": fg.ageing(report, lang)})
        if city:
            figs["f-rates"] = fg.district_rates(report, names, lang)
    if has["enterprise"]:
        figs["f-visits"] = fg.daily_visits(report, lang)
        if city:
            figs["f-types"] = fg.problem_types(report, lang)
    if has["parking"]:
        figs["f-occupancy"] = fg.daily_occupancy(report, lang)
        if city:
            figs["f-occ-district"] = fg.district_occupancy(report, names, lang)
    first, last = report["days"][0], report["days"][-1]
    heading = (f"<h1>{escape(title)} · {escape(report['scope_name'])} · {t('title', lang)}</h1>"
               f'<div class="meta">{t("week_range", lang, week=report["week"], first=first, last=last)} · '
               f'{t("data_as_of", lang)} {last} 24:00 · {t("generated", lang)} {escape(report["generated_at"][:16])}'
               f' · {t("app_version", lang)} {escape(report["app_version"])}</div>')
    note = f'<div class="note">{t("as_of_note", lang)}</div>'
    cases, ent, park = report["cases"], report["enterprise"], report["parking"]
    nr = _not_recorded(lang)
    summary = heading + f"<h2>{t('summary', lang)}</h2>"
    summary += f'<div class="group">{t("sec_cases", lang)}</div>' + (
        _cards(cases["kpis"], SUMMARY_CASES, kinds, lang) if has["cases"] else nr)
    summary += f'<div class="group">{t("sec_enterprise", lang)}</div>' + (
        _cards({**ent["kpis"], "open_problems_at_end": {"value": ent["open_problems_at_end"]}},
               SUMMARY_ENTERPRISE, kinds, lang) if has["enterprise"] else nr)
    summary += f'<div class="group">{t("sec_parking", lang)}</div>' + (
        _cards(park["kpis"], SUMMARY_PARKING, kinds, lang) if has["parking"] else nr)
    pages = [summary + note]
    if has["cases"]:
        pages += [
            f"<h2>{t('sec_cases', lang)}</h2>" + '<div class="charts">' + _chart("f-daily") + _chart("f-stage")
            + _chart("f-ageing") + "</div>" + note,
            f"<h2>{t('sec_districts', lang)}</h2>"
            + _district_table(cases["by_district"], cases["kpis"] if city else None, CASE_COLUMNS, kinds, names, lang)
            + ('<div class="charts" style="margin-top:8px">' + _chart("f-rates") + "</div>" if city else "") + note,
            f"<h2>{t('sec_overdue', lang, n=len(cases['top_overdue']))}</h2>"
            + _overdue_table(cases["top_overdue"], names, categories, lang, tz) + note]
    else:
        pages.append(f"<h2>{t('sec_cases', lang)}</h2>" + nr + note)
    if has["enterprise"]:
        pages.append(
            f"<h2>{t('sec_enterprise', lang)}</h2>"
            + _district_table(ent["by_district"], ent["kpis"] if city else None, ENT_COLUMNS, kinds, names, lang)
            + '<div class="charts" style="margin-top:8px">' + _chart("f-visits")
            + (_chart("f-types") if city else "") + "</div>" + note)
    else:
        pages.append(f"<h2>{t('sec_enterprise', lang)}</h2>" + nr + note)
    if has["parking"]:
        pages.append(
            f"<h2>{t('sec_parking', lang)}</h2>"
            + _district_table(park["by_district"], park["kpis"] if city else None, PARK_COLUMNS, kinds, names, lang,
                              extra=("facilities", "capacity", "occupancy_at_end"))
            + '<div class="charts" style="margin-top:8px">' + _chart("f-occupancy")
            + (_chart("f-occ-district") if city else "") + "</div>" + note)
    else:
        pages.append(f"<h2>{t('sec_parking', lang)}</h2>" + nr + note)
    body = "".join(f'<section class="page">{p}</section>' for p in pages)
    return ReportPage(title=f"{title} {report['week']} {report['scope_name']}", lang=lang, body=body,
                      data=script_json(report), figures=script_json(figs))


# draws every chart of the figures' JSON, then marks the body ready (for the printer)
DRAW = ("function drawReport() { var figs = JSON.parse(document.getElementById('report-figures').textContent);"
        " return Promise.all(Object.keys(figs).map(function (id) {"
        " return Plotly.newPlot(id, figs[id].data, figs[id].layout, {displayModeBar: false, responsive: false}); }))"
        ".then(function () { document.body.setAttribute('data-ready', '1'); }); }")
# the saved file's own script after its body: draw on load
BOOT = DRAW + "; window.reportReady = drawReport();"


def script_hashes() -> list[str]:
    """CSP sources of the executable inline scripts a saved report holds (plotly.js and
    BOOT; the two JSON blocks are data, not scripts). The exporter writes them into the
    manifest, and the archive serves each report with a policy allowing exactly these."""
    return [_plotly_hash(), csp_hash(BOOT)]


@dataclass(frozen=True)
class ReportPage:
    """A rendered report: its pages' HTML and its data, to be saved as one file (`html`)
    or loaded into an already open page for printing (`body_with_data`)."""

    title: str
    lang: str
    body: str
    data: str  # JSON, safe inside <script>
    figures: str

    def body_with_data(self) -> str:
        return (f'<script type="application/json" id="report-data">{self.data}</script>'
                f'<script type="application/json" id="report-figures">{self.figures}</script>{self.body}')

    def html(self) -> str:
        """The self-contained file: plotly.js inlined, nothing fetched."""
        return ("<!DOCTYPE html>\n"
                f'<html lang="{self.lang}"><head><meta charset="utf-8"><title>{escape(self.title)}</title>'
                f"<style>{CSS}</style><script>{plotly_js()}</script></head>"
                f"<body>{self.body_with_data()}<script>{BOOT}</script>"
                "</body></html>")


def print_shell() -> str:
    """A page holding plotly.js and the report's style, into which reports are loaded one
    after the other for printing (plotly.js is parsed once, not once per report)."""
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{CSS}</style>'
            f"<script>{plotly_js()}</script><script>{DRAW}</script></head><body></body></html>")
