"""The weekly report's charts as plain plotly figure dicts (sized for an A4 landscape page)."""
from __future__ import annotations

from layouts.i18n import t_or
from layouts.weekly.labels import t

FONT = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
WIDTH, HEIGHT = 495, 260  # two charts side by side on a page, under a table
COLOURS = ("#1f5fa8", "#e07b24", "#2f9e5b", "#c23b3b", "#7d5ba6", "#8c8c8c")


def _layout(title: str, *, width: int = WIDTH, height: int = HEIGHT, percent: bool = False, **extra) -> dict:
    layout = {"title": {"text": title, "font": {"size": 14}, "x": 0.02},
              "font": {"family": FONT, "size": 11}, "width": width, "height": height,
              "margin": {"l": 50, "r": 16, "t": 40, "b": 40}, "paper_bgcolor": "#ffffff",
              "plot_bgcolor": "#ffffff", "legend": {"orientation": "h", "y": -0.18},
              "yaxis": {"gridcolor": "#e6e6e6", "rangemode": "tozero"}, "xaxis": {"type": "category"}}
    if percent:
        layout["yaxis"]["tickformat"] = ".0%"
    layout.update(extra)
    return layout


def _day(d: str) -> str:
    return d[5:]  # MM-DD


def daily_cases(report: dict, lang: str) -> dict:
    days = report["cases"]["daily"]
    x = [_day(d["date"]) for d in days]
    data = [{"type": "bar", "name": t(k, lang), "x": x, "y": [d[k] for d in days], "marker": {"color": c}}
            for k, c in (("reported", COLOURS[0]), ("filed", COLOURS[1]), ("closed", COLOURS[2]))]
    return {"data": data, "layout": _layout(t("fig_daily", lang), barmode="group")}


def open_by_stage(report: dict, lang: str) -> dict:
    stages = report["cases"]["open_by_stage"]
    return {"data": [{"type": "bar", "x": [t(f"stage_{s}", lang) for s in stages], "y": list(stages.values()),
                      "marker": {"color": COLOURS[0]}, "text": list(stages.values()), "textposition": "outside"}],
            "layout": _layout(t("fig_stage", lang))}


def ageing(report: dict, lang: str) -> dict:
    buckets = report["cases"]["overdue_ageing"]
    names = [t(f"hours_{b['min_hours']}_{b['max_hours'] if b['max_hours'] is not None else ''}", lang) for b in buckets]
    return {"data": [{"type": "bar", "x": names, "y": [b["n"] for b in buckets], "marker": {"color": COLOURS[3]},
                      "text": [b["n"] for b in buckets], "textposition": "outside"}],
            "layout": _layout(t("fig_ageing", lang))}


def district_rates(report: dict, names: dict, lang: str) -> dict:
    rows = report["cases"]["by_district"]
    x = [names[c] for c in rows]
    data = [{"type": "bar", "name": t(label, lang), "x": x, "y": [rows[c]["closure_rate"][k] for c in rows],
             "marker": {"color": colour}}
            for k, label, colour in (("value", "this_week", COLOURS[0]), ("prev", "last_week", COLOURS[5]))]
    return {"data": data, "layout": _layout(t("fig_rates", lang), width=1000, percent=True, barmode="group")}


def daily_visits(report: dict, lang: str) -> dict:
    days = report["enterprise"]["daily_visits"]
    return {"data": [{"type": "bar", "x": [_day(d["date"]) for d in days], "y": [d["visits"] for d in days],
                      "marker": {"color": COLOURS[2]}}],
            "layout": _layout(t("fig_visits", lang))}


def problem_types(report: dict, lang: str) -> dict:
    types = report["enterprise"]["by_type"]
    return {"data": [{"type": "bar", "x": [t_or(f"ptype_{k}", lang, k) for k in types],
                      "y": [v["raised"]["value"] for v in types.values()], "marker": {"color": COLOURS[4]}}],
            "layout": _layout(t("fig_types", lang))}


def daily_occupancy(report: dict, lang: str) -> dict:
    days = report["parking"]["kpis"]["daily"]
    x = [_day(d["date"]) for d in days]
    data = [{"type": "scatter", "mode": "lines+markers", "name": t(label, lang), "x": x,
             "y": [d[k] for d in days], "line": {"color": colour}}
            for k, label, colour in (("occupancy", "this_week", COLOURS[0]), ("prev_occupancy", "last_week", COLOURS[5]))]
    return {"data": data, "layout": _layout(t("fig_occupancy", lang), percent=True)}


def district_occupancy(report: dict, names: dict, lang: str) -> dict:
    rows = report["parking"]["by_district"]
    return {"data": [{"type": "bar", "x": [names[c] for c in rows],
                      "y": [rows[c]["occupancy_week"]["value"] for c in rows], "marker": {"color": COLOURS[1]}}],
            "layout": _layout(t("fig_occ_district", lang), percent=True)}
