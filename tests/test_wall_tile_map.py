"""The wall's map for a city without district boundaries: a tile map, one labelled square
per district, none overlapping another, each with its name and value. The districts
are read from a real store (SQLite and PostgreSQL)."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from sqlalchemy import insert

from dashboard.reference import ReferenceSource, bundled
from datasource.schema import District
from layouts.wall import figures as fg
from layouts.wall import style as st

# a 311 city: numbered council districts, no boundary file; some with a centre, some without
COUNCIL = [{"code": f"CD{i:02d}", "name_zh": f"第{i}区", "short_zh": f"第{i}区",
            "name_en": f"Council District {i}", "kind": "district", "sort_order": 20 - i,
            "center_lon": None if i % 4 == 0 else -87.9 + (i % 5) * 0.08,
            "center_lat": None if i % 4 == 0 else 41.6 + (i % 7) * 0.06, "geometry": None}
           for i in range(1, 16)]


def _reference(engine, rows):
    with engine.begin() as conn:
        conn.execute(insert(District), rows)
    return ReferenceSource(engine).get()


def _tiles(fig) -> dict[str, tuple[float, float, float, float]]:
    """code -> (x0, x1, y0, y1) of each tile."""
    out = {}
    for tr in fig["data"]:
        if tr.get("fill") == "toself":
            out[tr["meta"]] = (min(tr["x"]), max(tr["x"]), min(tr["y"]), max(tr["y"]))
    return out


def _label(fig):
    return next(tr for tr in fig["data"] if tr.get("meta") == "labels")


def assert_readable_tiles(fig, ref, values, lang, fmt):
    assert fig["layout"]["meta"] == "tiles"
    tiles = _tiles(fig)
    assert set(tiles) == {d.code for d in ref.districts}
    for a, b in itertools.combinations(tiles.values(), 2):
        overlap_x = min(a[1], b[1]) - max(a[0], b[0])
        overlap_y = min(a[3], b[3]) - max(a[2], b[2])
        assert overlap_x <= 0 or overlap_y <= 0, (a, b)
    sides = {(round(t[1] - t[0], 9), round(t[3] - t[2], 9)) for t in tiles.values()}
    assert len(sides) == 1 and len(set(next(iter(sides)))) == 1  # squares of one size
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x" and fig["layout"]["yaxis"]["scaleratio"] == 1
    xr, yr = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
    labels = _label(fig)
    assert labels["customdata"] == [d.code for d in ref.districts]
    for code, x, y, text in zip(labels["customdata"], labels["x"], labels["y"], labels["text"]):
        x0, x1, y0, y1 = tiles[code]
        assert x0 < x < x1 and y0 < y < y1, code  # the label sits in its own tile
        assert xr[0] <= x0 and x1 <= xr[1] and yr[0] <= y0 and y1 <= yr[1]
        d = ref.district(code)
        name, value = text.replace("<b>", "").replace("</b>", "").rsplit("<br>", 1)
        assert name.replace("<br>", "").replace(" ", "") == d.name(lang).replace(" ", "") and \
            value == fmt(values.get(code)), text
    # at the label's font size each line fits its tile in the overview's map panel
    size = labels["textfont"]["size"]
    cols = max(c for c, _ in fg.tile_positions(ref.districts).values()) + 1
    rows = max(r for _, r in fg.tile_positions(ref.districts).values()) + 1
    tile_px = (1 - fg.TILE_GAP) * min(fg.TILE_AREA[0] / cols, fg.TILE_AREA[1] / rows)
    assert size >= 9
    for text in labels["text"]:
        lines = text.replace("<b>", "").replace("</b>", "").split("<br>")
        assert len(lines) * 1.3 * size <= tile_px
        assert max(fg._columns_of(x) for x in lines) * 0.6 * size <= tile_px


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_districts_without_geometry_are_tiles(engine, lang):
    rows = [dict(r, name_en="Greater Downtown Economic Development Zone", short_zh="郑州经济技术开发区")
            if r["code"] == "CD05" else r for r in COUNCIL]
    ref = _reference(engine, rows)
    assert not any(d.geometry for d in ref.districts)
    values = {d["code"]: (i * 37) % 101 for i, d in enumerate(COUNCIL)}
    values["CD08"] = None  # a district without a value still has its tile, marked —
    fig = fg.district_map(values, ref, SimpleNamespace(lang=lang, district="CD03"), "Open cases", False)
    assert_readable_tiles(fig, ref, values, lang, st.count)
    tile = next(tr for tr in fig["data"] if tr.get("meta") == "CD08")
    assert tile["fillcolor"] == fg.NO_VALUE
    focus = next(tr for tr in fig["data"] if tr.get("meta") == "CD03")
    assert focus["line"]["color"] == "#fde047"


def test_tiles_follow_the_centres_north_to_south_then_sort_order(engine):
    ref = _reference(engine, COUNCIL)
    where = fg.tile_positions(ref.districts)
    located = [d for d in ref.districts if d.lat is not None]
    for a, b in itertools.combinations(located, 2):
        if a.lat > b.lat + 1e-9:
            assert where[a.code][1] <= where[b.code][1], (a.code, b.code)
    for row in {r for _, r in where.values()}:
        in_row = sorted((c, code) for code, (c, r) in where.items() if r == row)
        lons = [ref.district(code).lon for _, code in in_row if ref.district(code).lon is not None]
        assert lons == sorted(lons)
    # the districts without a centre come last, in display (sort_order) order
    last = [d.code for d in ref.districts if d.lat is None]
    order = sorted(where, key=lambda code: (where[code][1], where[code][0]))
    assert order[-len(last):] == last
    assert [d.code for d in ref.districts][0] == "CD15"  # the store's sort_order, not the code


def test_no_centres_at_all_keeps_the_display_order(engine):
    rows = [dict(r, center_lon=None, center_lat=None) for r in COUNCIL[:7]]
    ref = _reference(engine, rows)
    values = {r["code"]: 0.5 for r in rows}
    fig = fg.district_map(values, ref, SimpleNamespace(lang="en", district=None), "Closure rate", True)
    assert_readable_tiles(fig, ref, values, "en", st.percent)
    where = fg.tile_positions(ref.districts)
    order = sorted(where, key=lambda code: (where[code][1], where[code][0]))
    assert order == [d.code for d in ref.districts]


def test_a_city_with_boundaries_keeps_its_shapes():
    """Zhengzhou: five polygons and three zones with a centre only: the geographic map."""
    ref = bundled()
    assert any(d.geometry for d in ref.districts) and not fg.wants_tiles(ref.districts)
    fig = fg.district_map({}, ref, SimpleNamespace(lang="zh-CN", district=None), "在办案件", False)
    assert fig["layout"].get("meta") != "tiles"


def test_one_district_with_neither_shape_nor_centre_turns_the_map_into_tiles():
    ref = bundled()
    lost = ref.districts[0].__class__(**{**ref.districts[0].__dict__, "geometry": None, "lon": None, "lat": None})
    mixed = ref.__class__((lost, *ref.districts[1:]), ref.categories, "x")
    assert fg.wants_tiles(mixed.districts)
    values = {d.code: 3 for d in mixed.districts}
    fig = fg.district_map(values, mixed, SimpleNamespace(lang="zh-CN", district=None), "在办案件", False)
    assert_readable_tiles(fig, mixed, values, "zh-CN", st.count)
