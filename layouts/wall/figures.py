"""The wall's charts: section data of the snapshot -> plotly figure dicts.

Each builder takes the section's data, the reference (names, shapes) and the view
(language, district). On a district's wall the district is highlighted in city-wide
rankings and its own figures are used where the snapshot has them.
"""
from __future__ import annotations

from layouts.i18n import t, t_or
from layouts.wall import style as st

STAGES = ("filed", "dispatched", "handled", "verified", "rework", "parked")
PERIOD = "month"  # the period of the wall's rate rankings and enterprise panels


def _codes(data: dict, ref, view) -> list[str]:
    """The districts in display order (reference order, then any the reference lacks)."""
    known = [d.code for d in ref.districts]
    extra = [c for c in data.get("districts", []) if c not in known]
    return [c for c in known if c in set(data.get("districts", known))] + extra


def _bar_colours(codes, view, base: str) -> list[str]:
    if view.district is None:
        return [base] * len(codes)
    return [base if c == view.district else "rgba(91,141,239,0.35)" for c in codes]


def _kpi(block: dict | None, name: str):
    return (block or {}).get(name, {}).get("value")


def open_by_stage(cases: dict, ref, view) -> dict:
    """Stacked bars of open cases per stage: per district (city wall) or per category
    (district wall)."""
    lang = view.lang
    if view.district is None:
        codes = list(reversed(_codes(cases, ref, view)))
        labels = [ref.district_name(c, lang) for c in codes]
        by = cases["open"]["by_district"]
        values = {s: [by.get(c, {}).get(s, 0) for c in codes] for s in STAGES}
    else:
        tops: dict[str, dict[str, int]] = {}
        for d, cat, stage, n in cases["open"]["by_district_category_stage"]:
            if d == view.district:
                top = (ref.categories.get(cat) or {}).get("parent") or cat
                tops.setdefault(top, {}).setdefault(stage, 0)
                tops[top][stage] += n
        codes = sorted(tops, key=lambda c: sum(tops[c].values()))
        labels = category_labels(codes, ref, lang)
        values = {s: [tops[c].get(s, 0) for c in codes] for s in STAGES}
    data = [{"type": "bar", "orientation": "h", "name": t(f"stage_{s}", lang), "y": labels,
             "x": values[s], "marker": {"color": st.STAGE_COLOURS[s]}, "meta": s} for s in STAGES]
    return {"data": data, "layout": st.layout(barmode="stack", showlegend=True, margin={"t": 40},
                                               yaxis=every_label(labels))}


def values_of(by_district: dict, kpi: str) -> dict:
    """{district: value} from per-district blocks, whether the KPI is {"value": ...} or plain."""
    out = {}
    for code, block in by_district.items():
        v = (block or {}).get(kpi)
        out[code] = v.get("value") if isinstance(v, dict) else v
    return out


def rank(values: dict, ref, view, rules, rule: str) -> dict:
    """Districts ranked by a rate (best at the top), coloured by threshold level; the
    level's word is in each bar's label, so colour is never the only cue."""
    lang = view.lang
    higher_better = rules.RULES[rule].higher_is_better
    rows = sorted(((c, v) for c, v in values.items() if c != "city"),
                  key=lambda r: (r[1] is not None, (r[1] or 0) if higher_better else -(r[1] or 0)))
    codes = [c for c, _ in rows]
    vals = [v for _, v in rows]
    levels = [rules.level(rule, v) for v in vals]
    colours = [st.LEVEL_COLOURS[lv] for lv in levels]
    if view.district is not None:
        colours = [c if code == view.district else "rgba(91,141,239,0.35)" for c, code in zip(colours, codes)]
    text = [f"{st.percent(v)}  {st.LEVEL_ICONS[lv]} {t('level_' + lv, lang)}" if lv else st.percent(v)
            for v, lv in zip(vals, levels)]
    return {"data": [{"type": "bar", "orientation": "h", "y": [ref.district_name(c, lang) for c in codes],
                      "x": [v if v is not None else 0 for v in vals], "text": text,
                      "textposition": "outside", "cliponaxis": False, "constraintext": "none", "customdata": codes,
                      "textfont": {"size": 16, "color": st.TEXT}, "marker": {"color": colours}}],
            "layout": st.layout(bargap=0.25, xaxis={"tickformat": ".0%", "range": [0, 1.32],
                                                    "tickvals": [0, 0.25, 0.5, 0.75, 1.0]},
                                yaxis=every_label([ref.district_name(c, lang) for c in codes]))}


def every_label(labels: list[str]) -> dict:
    """A category axis that shows every label, even in a short panel."""
    return {"tickmode": "array", "tickvals": labels, "ticktext": labels}


def closure_rank(cases: dict, ref, view, rules) -> dict:
    return rank(values_of(cases["periods_kpis"][PERIOD]["by_district"], "closure_rate"), ref, view,
                rules, "closure_rate")


def trend(cases: dict, ref, view) -> dict:
    series = cases.get("series_30d") or []
    dates = [r["date"] for r in series]
    lang = view.lang
    return {"data": [
        {"type": "scatter", "mode": "lines+markers", "name": t("reported", lang), "x": dates,
         "y": [r["reported"] for r in series], "line": {"color": st.SERIES[0], "width": 3},
         "marker": {"size": 5}, "meta": "reported"},
        {"type": "scatter", "mode": "lines+markers", "name": t("closed", lang), "x": dates,
         "y": [r["closed"] for r in series], "line": {"color": st.SERIES[1], "width": 3},
         "marker": {"size": 5}, "meta": "closed"},
    ], "layout": st.layout(showlegend=True, margin={"t": 40},
                           xaxis={"type": "date", "tickformat": "%m-%d", "nticks": 8})}


def categories(cases: dict, ref, view) -> dict:
    lang = view.lang
    if view.district is None:
        counts = dict(cases["open"]["by_category"])
    else:
        counts = {}
        for d, cat, _stage, n in cases["open"]["by_district_category_stage"]:
            if d == view.district:
                top = (ref.categories.get(cat) or {}).get("parent") or cat
                counts[top] = counts.get(top, 0) + n
    codes = sorted(counts, key=lambda c: counts[c])
    return {"data": [{"type": "bar", "orientation": "h", "y": category_labels(codes, ref, lang),
                      "x": [counts[c] for c in codes], "text": [st.count(counts[c]) for c in codes],
                      "textposition": "auto", "marker": {"color": st.ACCENT}, "customdata": codes}],
            "layout": st.layout()}


def category_labels(codes: list[str], ref, lang: str) -> list[str]:
    """Category names, with the code added where two categories share a name (a
    component and an event class can both be called 市容环境)."""
    names = [ref.category_name(c, lang) for c in codes]
    return [f"{n} ({c})" if names.count(n) > 1 else n for n, c in zip(names, codes)]


def ageing(cases: dict, ref, view) -> dict:
    buckets = cases["overdue"]["ageing"]
    lang = view.lang
    labels = [t(f"hours_{b['min_hours']}_{b['max_hours'] or ''}", lang) for b in buckets]
    values = [b["n"] if view.district is None else b["by_district"].get(view.district, 0) for b in buckets]
    colours = ["#facc15", "#f59e0b", "#f97316", "#ef4444", "#b91c1c"][:len(values)]
    return {"data": [{"type": "bar", "x": labels, "y": values, "text": [st.count(v) for v in values],
                      "textposition": "auto", "marker": {"color": colours}}],
            "layout": st.layout()}


# --- the map ------------------------------------------------------------------------
MAP_SCALE = [(0.0, (11, 58, 111)), (0.5, (29, 127, 196)), (1.0, (34, 211, 238))]
NO_VALUE = "#334155"


def scale_colour(value, lo: float, hi: float) -> str:
    if value is None:
        return NO_VALUE
    f = 0.0 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    for (f0, c0), (f1, c1) in zip(MAP_SCALE, MAP_SCALE[1:]):
        if f <= f1:
            k = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
            return "#%02x%02x%02x" % tuple(round(a + (b - a) * k) for a, b in zip(c0, c1))
    return "#%02x%02x%02x" % MAP_SCALE[-1][1]


def _outline(geometry: dict) -> tuple[list, list]:
    """A (Multi)Polygon's outer rings as one None-separated path (holes ignored)."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    xs: list = []
    ys: list = []
    for poly in polys:
        ring = poly[0]
        xs += [round(p[0], 4) for p in ring] + [None]
        ys += [round(p[1], 4) for p in ring] + [None]
    return xs, ys


def wants_tiles(districts) -> bool:
    """A city without boundaries (no district has a polygon), or with a district that has
    neither a polygon nor a centre to put a marker at, is drawn as a tile map."""
    return bool(districts) and (not any(d.geometry for d in districts)
                                or any(not d.geometry and (d.lon is None or d.lat is None) for d in districts))


# the overview's map panel (assets/wall.css) less the colour bar, in pixels: what tiles
# and their labels are sized for
TILE_AREA = (620, 500)


def tile_columns(n: int) -> int:
    """The number of columns that gives the largest square tiles in TILE_AREA."""
    import math

    w, h = TILE_AREA
    return max(range(1, max(n, 1) + 1), key=lambda c: (min(w / c, h / math.ceil(n / c)), -c))


def tile_positions(districts) -> dict[str, tuple[int, int]]:
    """(column, row) of each district's tile, row 0 at the top. Districts with a centre
    come first, north to south in rows and west to east within a row, so that the tiles
    keep the rough shape of the city; the others follow in display order (sort_order)."""
    cols = tile_columns(len(districts))
    located = sorted((d for d in districts if d.lon is not None and d.lat is not None), key=lambda d: -d.lat)
    order = []
    for i in range(0, len(located), cols):
        order += sorted(located[i:i + cols], key=lambda d: d.lon)
    order += [d for d in districts if d.lon is None or d.lat is None]
    return {d.code: (i % cols, i // cols) for i, d in enumerate(order)}


def _columns_of(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def tile_text(names: list[str], values: list[str], tile_px: float) -> tuple[list[str], int]:
    """Labels ("<b>name</b><br>value", the name wrapped) and the largest font size at
    which every label fits inside a tile of `tile_px` pixels: a text column is taken as
    0.6 em wide (a CJK character two columns) and a line 1.3 em high."""
    # the widest piece a line cannot break: a word, or one character of a CJK run (_wrap)
    longest_word = max((2 if _columns_of(w) > len(w) else len(w) for n in names for w in n.split()), default=1)
    widest = max([_columns_of(n) for n in names] + [len(v) for v in values] + [1])
    best = (0.0, widest)
    for width in range(max(longest_word, *(len(v) for v in values), 4), widest + 1):
        lines = 1 + max(len(_wrap(n, width).split("<br>")) for n in names)
        size = min(22.0, 0.88 * tile_px / (0.6 * width), 0.85 * tile_px / (1.3 * lines))
        if size > best[0]:
            best = (size, width)
    size, width = best
    return ([f"<b>{_wrap(n, width)}</b><br>{v}" for n, v in zip(names, values)], max(9, int(size)))


TILE_GAP = 0.1  # between two tiles, in tile widths


def _wrap(name: str, width: int = 16) -> str:
    """A name over lines of at most `width` columns (a CJK character takes two and may
    end a line anywhere; other words are kept whole)."""
    pieces = []  # (text, joined to the previous piece by a space)
    for word in name.replace("\u3000", " ").split():
        if _columns_of(word) > width and _columns_of(word) > len(word):  # a long CJK run: per character
            pieces += [(c, i == 0) for i, c in enumerate(word)]
        else:
            pieces.append((word, True))
    lines, line = [], ""
    for text, spaced in pieces:
        joined = f"{line} {text}" if line and spaced else line + text
        if line and _columns_of(joined) > width:
            lines.append(line)
            joined = text
        line = joined
    lines.append(line)
    return "<br>".join(lines)


def _text_colour(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#061634" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#ffffff"


def tile_map(values: dict, ref, view, kpi_label: str, is_rate: bool) -> dict:
    """Every district as a labelled square of the same size on a grid (tile_positions):
    no shape can cover another, and each tile carries its name and value."""
    lang = view.lang
    districts = list(ref.districts)
    where = tile_positions(districts)
    cols = max(c for c, _ in where.values()) + 1
    rows = max(r for _, r in where.values()) + 1
    known = [v for v in values.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0, 1)
    fmt = st.percent if is_rate else st.count
    side = 1 - TILE_GAP
    data, fills = [], []
    for d in districts:
        col, row = where[d.code]
        x0, y1 = col, -row
        fill = scale_colour(values.get(d.code), lo, hi)
        fills.append(fill)
        focus = d.code == view.district
        data.append({"type": "scatter", "mode": "lines", "fill": "toself",
                     "x": [x0, x0 + side, x0 + side, x0, x0], "y": [y1, y1, y1 - side, y1 - side, y1],
                     "fillcolor": fill, "hoverinfo": "skip", "meta": d.code, "name": d.name(lang),
                     "line": {"color": "#fde047" if focus else "#9cc3ff", "width": 4 if focus else 1.5}})
    tile_px = side * min(TILE_AREA[0] / cols, TILE_AREA[1] / rows)
    text, size = tile_text([d.name(lang) for d in districts], [fmt(values.get(d.code)) for d in districts], tile_px)
    data.append({"type": "scatter", "mode": "text",
                 "x": [where[d.code][0] + side / 2 for d in districts],
                 "y": [-where[d.code][1] - side / 2 for d in districts],
                 "text": text,
                 "textfont": {"size": size, "color": [_text_colour(f) for f in fills]},
                 "customdata": [d.code for d in districts], "hoverinfo": "skip", "meta": "labels"})
    data.append({"type": "scatter", "mode": "markers", "x": [side / 2] * 2, "y": [-side / 2] * 2,
                 "hoverinfo": "skip", "meta": "scale",
                 "marker": {"size": 0.1, "opacity": 0, "color": [lo, hi], "cmin": lo, "cmax": hi,
                            "colorscale": [[f, "#%02x%02x%02x" % c] for f, c in MAP_SCALE], "showscale": True,
                            "colorbar": {"title": {"text": kpi_label, "side": "right"}, "thickness": 14,
                                         "len": 0.7, "tickformat": ".0%" if is_rate else ",d",
                                         "outlinewidth": 0, "tickfont": {"size": 14}}}})
    pad = TILE_GAP
    hidden = {"visible": False, "fixedrange": True, "showgrid": False, "zeroline": False}
    return {"data": data, "layout": st.layout(
        meta="tiles", xaxis={**hidden, "range": [-pad, cols - TILE_GAP + pad]},
        yaxis={**hidden, "range": [-rows + TILE_GAP - pad, pad], "scaleanchor": "x", "scaleratio": 1},
        margin={"l": 0, "r": 0, "t": 0, "b": 0})}


def district_map(values: dict, ref, view, kpi_label: str, is_rate: bool) -> dict:
    """Districts with a boundary as filled shapes, the others as labelled diamonds at
    their centre. Plain x/y traces on hidden axes (longitude, latitude with the scale
    corrected for latitude): no map tiles, no topojson, nothing fetched (offline).
    A city without boundaries gets the tile map instead (wants_tiles)."""
    import math

    if wants_tiles(ref.districts):
        return tile_map(values, ref, view, kpi_label, is_rate)
    lang = view.lang
    shaped = [d for d in ref.districts if d.geometry]
    unshaped = [d for d in ref.districts if not d.geometry and d.lon is not None]
    known = [v for v in values.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0, 1)
    fmt = st.percent if is_rate else st.count
    data = []
    for d in shaped:
        xs, ys = _outline(d.geometry)
        focus = d.code == view.district
        data.append({"type": "scatter", "mode": "lines", "fill": "toself", "x": xs, "y": ys,
                     "fillcolor": scale_colour(values.get(d.code), lo, hi), "hoverinfo": "skip",
                     "line": {"color": "#fde047" if focus else "#9cc3ff", "width": 4 if focus else 1.5},
                     "meta": d.code, "name": d.name(lang)})
    data.append({"type": "scatter", "mode": "text", "x": [d.lon for d in shaped], "y": [d.lat for d in shaped],
                 "text": [f"<b>{d.name(lang)}</b><br>{fmt(values.get(d.code))}" for d in shaped],
                 "textfont": {"size": 18, "color": "#ffffff"}, "customdata": [d.code for d in shaped],
                 "hoverinfo": "skip", "meta": "labels"})
    data.append({"type": "scatter", "mode": "markers+text", "x": [d.lon for d in unshaped],
                 "y": [d.lat for d in unshaped],
                 "marker": {"size": 30, "symbol": "diamond",
                            "color": [scale_colour(values.get(d.code), lo, hi) for d in unshaped],
                            "line": {"color": ["#fde047" if d.code == view.district else "#e6f0ff" for d in unshaped],
                                     "width": [4 if d.code == view.district else 2 for d in unshaped]}},
                 "text": [f"{d.name(lang)} {fmt(values.get(d.code))}" for d in unshaped],
                 "textposition": "bottom center", "textfont": {"size": 1, "color": "rgba(0,0,0,0)"},
                 "customdata": [d.code for d in unshaped], "hoverinfo": "skip", "meta": "zones"})
    points = [(d.lon, d.lat) for d in ref.districts if d.lon is not None]
    # zones sit inside districts: their labels go outwards, away from the map's centre
    cx = sum(p[0] for p in points) / len(points) if points else 0
    cy = sum(p[1] for p in points) / len(points) if points else 0
    annotations = [{"x": d.lon, "y": d.lat, "xref": "x", "yref": "y", "showarrow": True, "arrowcolor": "#e6f0ff",
                    "arrowwidth": 1.5, "ax": 170 if d.lon >= cx else -170, "ay": -50 if d.lat >= cy else 50,
                    "text": f"<b>{d.name(lang)}</b> {fmt(values.get(d.code))}",
                    "font": {"size": 17, "color": st.TEXT}, "bgcolor": "rgba(6,22,52,0.85)",
                    "bordercolor": "#fde047" if d.code == view.district else "#5b8def", "borderpad": 4}
                   for d in unshaped]
    if points:  # the colour bar: an invisible marker trace carrying the scale
        data.append({"type": "scatter", "mode": "markers", "x": [points[0][0]] * 2, "y": [points[0][1]] * 2,
                     "hoverinfo": "skip", "meta": "scale",
                     "marker": {"size": 0.1, "opacity": 0, "color": [lo, hi], "cmin": lo, "cmax": hi,
                                "colorscale": [[f, "#%02x%02x%02x" % c] for f, c in MAP_SCALE],
                                "showscale": True,
                                "colorbar": {"title": {"text": kpi_label, "side": "right"}, "thickness": 14,
                                             "len": 0.7, "tickformat": ".0%" if is_rate else ",d",
                                             "outlinewidth": 0, "tickfont": {"size": 14}}}})
    mid_lat = sum(p[1] for p in points) / len(points) if points else 35.0
    hidden = {"visible": False, "fixedrange": True, "showgrid": False, "zeroline": False}
    return {"data": data, "layout": st.layout(
        xaxis=hidden, yaxis={**hidden, "scaleanchor": "x", "scaleratio": 1 / math.cos(math.radians(mid_lat))},
        annotations=annotations, margin={"l": 0, "r": 0, "t": 0, "b": 0})}


# --- enterprise ---------------------------------------------------------------------
def enterprise_by_district(ent: dict, ref, view) -> dict:
    lang = view.lang
    block = ent["periods"][PERIOD]["by_district"]
    codes = _codes(ent, ref, view)
    names = [ref.district_name(c, lang) for c in codes]
    series = [("visits", st.SERIES[0]), ("problems_raised", st.SERIES[1]), ("problems_resolved", st.SERIES[3])]
    data = [{"type": "bar", "name": t(k, lang), "x": names,
             "y": [_kpi(block.get(c), k) for c in codes], "meta": k,
             "marker": {"color": _bar_colours(codes, view, colour) if k == "visits" else colour}}
            for k, colour in series]
    return {"data": data, "layout": st.layout(barmode="group", showlegend=True, margin={"t": 40})}


def problem_types(ent: dict, ref, view) -> dict:
    lang = view.lang
    by_type = ent["periods"][PERIOD]["by_type"]
    open_by_type = ent.get("open_problems", {}).get("by_type", {})
    types = sorted(set(by_type) | set(open_by_type), key=lambda k: _kpi(by_type.get(k), "raised") or 0)
    names = [t_or(f"ptype_{k}", lang, k) for k in types]
    return {"data": [
        {"type": "bar", "orientation": "h", "name": t("problems_raised", lang), "y": names,
         "x": [_kpi(by_type.get(k), "raised") or 0 for k in types], "marker": {"color": st.SERIES[1]},
         "meta": "raised", "customdata": types},
        {"type": "bar", "orientation": "h", "name": t("problems_open", lang), "y": names,
         "x": [open_by_type.get(k, 0) for k in types], "marker": {"color": "#ef4444"},
         "meta": "open", "customdata": types},
    ], "layout": st.layout(barmode="group", showlegend=True, margin={"t": 40})}


def resolution_rank(ent: dict, ref, view, rules) -> dict:
    return rank(values_of(ent["periods"][PERIOD]["by_district"], "resolution_rate"), ref, view, rules,
                "resolution_rate")


def grid_coverage(ent: dict, ref, view, limit: int = 14) -> dict:
    """Exclusive grids visited in the period: per district (visited / all grids) on the
    city wall; per grid (enterprises visited / members) on a district's wall."""
    lang = view.lang
    stats = ent["periods"][PERIOD]["by_exclusive_grid"]
    grids = ent.get("exclusive_grids", [])
    visited = lambda g: bool(_kpi(stats.get(str(g["grid_id"])), "visits"))  # noqa: E731
    if view.district is None:
        codes = list(reversed(_codes(ent, ref, view)))
        total = {c: sum(1 for g in grids if g["district"] == c) for c in codes}
        seen = {c: sum(1 for g in grids if g["district"] == c and visited(g)) for c in codes}
        values = [seen[c] / total[c] if total[c] else None for c in codes]
        labels = [ref.district_name(c, lang) for c in codes]
        text = [f"{seen[c]}/{total[c]}" for c in codes]
        custom = codes
    else:
        rows = sorted((g for g in grids if g["district"] == view.district),
                      key=lambda g: (_kpi(stats.get(str(g["grid_id"])), "coverage") or 0, -g["grid_id"]))[-limit:]
        values = [_kpi(stats.get(str(g["grid_id"])), "coverage") for g in rows]
        labels = [g["host_unit"] for g in rows]
        text = [st.percent(v) for v in values]
        custom = [g["grid_id"] for g in rows]
    return {"data": [{"type": "bar", "orientation": "h", "y": labels, "x": [v or 0 for v in values],
                      "text": text, "textposition": "outside", "cliponaxis": False, "constraintext": "none", "customdata": custom,
                      "textfont": {"size": 16, "color": st.TEXT}, "marker": {"color": st.SERIES[2]}}],
            "layout": st.layout(bargap=0.25, xaxis={"tickformat": ".0%", "range": [0, 1.25],
                                                    "tickvals": [0, 0.25, 0.5, 0.75, 1.0]})}


# --- parking ------------------------------------------------------------------------
def occupancy_rank(park: dict, ref, view, rules) -> dict:
    return rank(values_of(park["by_district"], "occupancy_now"), ref, view, rules, "occupancy")


def occupancy_curve(park: dict, ref, view) -> dict:
    lang = view.lang
    lines = [("city", t("city", lang), park["city"])]
    for i, code in enumerate(_codes(park, ref, view)):
        if view.district is None or code == view.district:
            lines.append((code, ref.district_name(code, lang), park["by_district"].get(code, {})))
    data = []
    for i, (code, name, block) in enumerate(lines):
        curve = block.get("today_curve") or []
        focus = code == "city" if view.district is None else code == view.district
        data.append({"type": "scatter", "mode": "lines", "name": name,
                     "x": [f"{p['hour']:02d}:00" for p in curve], "y": [p["occupancy"] for p in curve],
                     "meta": code, "line": {"width": 5 if focus else 2,
                                            "color": st.ACCENT if code == "city" else st.SERIES[(i + 1) % len(st.SERIES)]}})
    return {"data": data, "layout": st.layout(showlegend=True, margin={"t": 40},
                                               yaxis={"tickformat": ".0%"})}


def capacity(park: dict, ref, view) -> dict:
    lang = view.lang
    codes = _codes(park, ref, view)
    names = [ref.district_name(c, lang) for c in codes]
    parts = [("on_street_capacity", "on_street", st.SERIES[0]), ("off_street_capacity", "off_street", st.SERIES[5]),
             ("shared_capacity", "shared", st.SERIES[3])]
    data = [{"type": "bar", "name": t(label, lang), "x": names, "meta": key,
             "y": [park["by_district"].get(c, {}).get(key, 0) for c in codes], "marker": {"color": colour}}
            for key, label, colour in parts]
    return {"data": data, "layout": st.layout(barmode="stack", showlegend=True, margin={"t": 40})}


def programme(park: dict, ref, view) -> dict:
    lang = view.lang
    codes = _codes(park, ref, view)
    names = [ref.district_name(c, lang) for c in codes]
    data = [{"type": "bar", "name": t(k, lang), "x": names, "meta": k,
             "y": [park["by_district"].get(c, {}).get("programme_this_year", {}).get(k, 0) for c in codes],
             "marker": {"color": colour}}
            for k, colour in (("added", st.SERIES[0]), ("revitalised", st.SERIES[1]), ("shared", st.SERIES[3]))]
    return {"data": data, "layout": st.layout(barmode="group", showlegend=True, margin={"t": 40})}
