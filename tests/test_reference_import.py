"""Reference data through the documented import: districts, boundaries (GeoJSON of any
name), streets, grids, categories, departments and sources, loaded and loaded again."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

import dashboard.cli as cli
from datasource.importer import ImportError_
from datasource.importer.rejects import read_rejects
from datasource.reference import load_reference
from datasource.schema import Case, CaseCategory, CaseSource, Department, District, Grid, Street
from tests.import_helpers import run, write_csv


def rows(engine, model, key="code") -> dict:
    with engine.connect() as conn:
        return {getattr(r, key): r._mapping for r in conn.execute(select(model))}


def square(lon: float, lat: float, size: float = 0.1) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size],
                                                [lon, lat + size], [lon, lat]]]}


def geojson(path: Path, features: list[tuple[dict, dict | None]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom} for props, geom in features]}), encoding="utf-8")
    return path


def districts_csv(tmp_path: Path, rows_=None) -> Path:
    return write_csv(tmp_path / "districts.csv", ["code", "name"], rows_ or [[str(i), f"District {i}"] for i in (1, 2, 3)])


# --- the findings of issue 12 ---------------------------------------------------------
def test_a_header_only_streets_file_loads_nothing_and_does_not_crash(engine, tmp_path):
    folder = tmp_path / "city"
    folder.mkdir()
    districts_csv(folder)
    (folder / "streets.csv").write_text("district_code,name_zh\n", encoding="utf-8")
    results = {r.kind: r for r in load_reference(engine, folder)}
    assert (results["streets"].read, results["streets"].inserted) == (0, 0)
    assert rows(engine, Street) == {} and len(rows(engine, District)) == 3


def test_a_boundary_file_of_any_name_is_used(engine, tmp_path):
    folder = tmp_path / "city"
    folder.mkdir()
    districts_csv(folder)
    # not zhengzhou-410100.geojson, and no `adcode`: the code is under `code`, found by its alias
    geojson(folder / "council-districts-2024.geojson", [({"code": "2", "label": "x"}, square(-87.7, 41.8))])
    load_reference(engine, folder)
    got = rows(engine, District)
    assert json.loads(got["2"]["geometry"]) == square(-87.7, 41.8)
    assert got["1"]["geometry"] is None
    # no label point given: the polygon's centre
    assert (got["2"]["center_lon"], got["2"]["center_lat"]) == pytest.approx((-87.65, 41.85))


def test_loading_again_on_a_store_with_districts_updates_them(engine, tmp_path):
    first = run(engine, districts_csv(tmp_path), "districts")
    assert (first.inserted, first.updated) == (3, 0)
    renamed = write_csv(tmp_path / "districts2.csv", ["code", "name_en", "name_zh"],
                        [["1", "First Ward", "第一区"], ["2", "District 2", "District 2"], ["4", "District 4", ""]])
    again = run(engine, renamed, "districts")
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (1, 1, 1, 0)
    got = rows(engine, District)
    assert (got["1"]["name_en"], got["1"]["name_zh"]) == ("First Ward", "第一区")
    assert got["4"]["name_zh"] == "District 4"  # an empty name takes the other one
    assert got["4"]["sort_order"] > max(got[c]["sort_order"] for c in "123")
    # what the store has that the file did not name is said, and kept
    assert "  1 districts in the store are not in the file (kept): 3 District 3" in again.summary_lines()
    assert "3" in got
    same = run(engine, renamed, "districts")
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 3)


def test_an_empty_store_asks_for_districts_by_their_command(engine, tmp_path):
    streets = write_csv(tmp_path / "streets.csv", ["district", "name"], [["1", "Main St"]])
    with pytest.raises(ImportError_, match=r"the store has no districts: load them first with "
                                           r"`python -m dashboard import DISTRICTS.csv --kind districts`"):
        run(engine, streets, "streets")


# --- boundaries ---------------------------------------------------------------------------------
def test_boundaries_by_a_named_property_matching_codes_or_names(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    path = geojson(tmp_path / "wards.json", [
        ({"DIST_NAME": "District 1", "OBJECTID": 7}, square(-87.7, 41.8)),      # by name
        ({"DIST_NAME": "2", "OBJECTID": 8}, square(-87.6, 41.8)),               # by code
        ({"DIST_NAME": "District 9", "OBJECTID": 9}, square(-87.5, 41.8)),      # nothing matches
        ({"DIST_NAME": "District 1", "OBJECTID": 10}, square(-87.9, 41.8)),     # a second part of 1
        ({"DIST_NAME": "2", "OBJECTID": 11}, {"type": "Point", "coordinates": [1, 2]}),
    ])
    mapping = tmp_path / "wards.yaml"
    mapping.write_text("columns:\n  district_code: DIST_NAME\n", encoding="utf-8")
    result = run(engine, path, "boundaries", mapping=mapping)
    rejects = read_rejects(path.with_name("wards.rej.csv"))
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        ("3", "district_code", "unknown_district"), ("5", "geometry", "invalid_value")]
    assert "'District 9'" in rejects[0]["message"] and "columns:" in rejects[0]["message"]
    assert '"OBJECTID": 9' in rejects[0]["raw"] and "coordinates" not in rejects[0]["raw"]
    got = rows(engine, District)
    one = json.loads(got["1"]["geometry"])
    assert one["type"] == "MultiPolygon" and len(one["coordinates"]) == 2  # the two parts, merged
    assert json.loads(got["2"]["geometry"]) == square(-87.6, 41.8)
    lines = result.summary_lines()
    assert "  features merged into the boundary of a district an earlier feature named: 1" in lines
    assert "  1 districts have no boundary (drawn without a shape): 3 District 3" in lines
    assert (result.read, result.updated, result.rejected) == (5, 2, 2)
    # the same file again changes nothing
    again = run(engine, path, "boundaries", mapping=mapping)
    assert (again.updated, again.unchanged) == (0, 2)


def test_a_json_feature_collection_and_a_datav_centroid(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    # pretty-printed with another key first, named .json: still GeoJSON for --kind boundaries
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps({"name": "x", "crs": {"type": "name"}, "type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": 3, "centroid": [-87.61, 41.82]},
         "geometry": square(-87.7, 41.8)}]}, indent=2), encoding="utf-8")
    run(engine, path, "boundaries")
    got = rows(engine, District)["3"]
    assert (got["center_lon"], got["center_lat"]) == (-87.61, 41.82) and got["geometry"]


# --- streets, grids -------------------------------------------------------------------------------
def test_streets_with_and_without_codes_and_grids_with_parents(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    streets = write_csv(tmp_path / "streets.csv", ["district", "street", "code"],
                        [["District 1", "Main St", "S1"], ["2", "Oak Ave", ""]])
    assert run(engine, streets, "streets").inserted == 2
    got = rows(engine, Street)
    assert got["S1"]["district_code"] == "1" and got["2-Oak Ave"]["name_zh"] == "Oak Ave"
    # a level-2 grid comes before its parent in the file
    grids = write_csv(tmp_path / "grids.csv", ["code", "name", "district", "street", "parent", "kind"], [
        ["G1-1", "Block 1", "1", "Main St", "G1", ""],
        ["G1", "Main St grid", "1", "S1", "", "专属网格"],
        ["G2", "Oak grid", "2", "Oak Ave", "NOPE", ""],
        ["G3", "No street", "2", "", "", ""],
    ])
    result = run(engine, grids, "grids")
    assert (result.inserted, result.rejected) == (2, 2)
    reasons = [(r["line"], r["field"], r["reason"]) for r in read_rejects(grids.with_name("grids.rej.csv"))]
    assert reasons == [("4", "parent", "unknown_grid"), ("5", "street", "missing_value")]
    g = rows(engine, Grid)
    assert (g["G1"]["kind"], g["G1"]["level"], g["G1"]["parent_id"]) == ("exclusive", 1, None)
    assert (g["G1-1"]["level"], g["G1-1"]["parent_id"]) == (2, g["G1"]["id"])
    assert run(engine, grids, "grids").unchanged == 2


# --- categories, departments, sources, and cases that use them ---------------------------------------
def test_categories_departments_and_sources_are_what_cases_resolve(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    deps = write_csv(tmp_path / "deps.csv", ["code", "name"], [["STS", "Streets and Sanitation"]])
    run(engine, deps, "departments")
    cats = write_csv(tmp_path / "cats.csv", ["code", "name", "parent", "sla_days", "department"], [
        ["POT", "Pothole", "ROADS", "3", "STS"],  # before its parent
        ["ROADS", "Roads", "", "", ""],
        ["GRF", "Graffiti", "", "7", "Parks"],
    ])
    assert run(engine, cats, "categories").inserted == 3
    c = rows(engine, CaseCategory)
    assert (c["POT"]["parent_code"], c["POT"]["time_limit_hours"], c["POT"]["department"]) == \
        ("ROADS", 72.0, "Streets and Sanitation")
    assert c["GRF"]["department"] == "Parks" and c["ROADS"]["kind"] == "event"
    sources = write_csv(tmp_path / "sources.csv", ["code", "name_en"], [["phone", "Phone"], ["email", "Email"],
                                                                       ["app", "311 App"]])
    run(engine, sources, "sources")
    assert set(rows(engine, CaseSource)) == {"phone", "email", "app"}
    cases = write_csv(tmp_path / "cases.csv", ["id", "origin", "category", "district", "reported_at"], [
        ["C1", "Email", "Pothole", "District 2", "2026-11-26 09:00"],
        ["C2", "311 App", "GRF", "1", "2026-11-26 10:00"],
        ["C3", "Fax", "GRF", "1", "2026-11-26 10:00"],
    ])
    result = run(engine, cases, "cases")
    got = rows(engine, Case, "external_id")
    assert (got["C1"]["source"], got["C1"]["category_code"], got["C1"]["department"]) == \
        ("email", "POT", "Streets and Sanitation")
    assert got["C2"]["source"] == "app" and result.rejected == 1
    [reject] = read_rejects(cases.with_name("cases.rej.csv"))
    assert (reject["field"], reject["reason"]) == ("source", "invalid_value")
    assert "--kind sources" in reject["message"]


def test_a_city_without_categories_or_sources_uses_the_defaults(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    cases = write_csv(tmp_path / "cases.csv", ["id", "district", "reported_at"],
                      [["C1", "1", "2026-11-26 09:00"], ["C2", "2", "2026-11-26 09:30"]])
    result = run(engine, cases, "cases")
    assert (result.inserted, result.rejected) == (2, 0)
    got = rows(engine, Case, "external_id")
    assert {(c["category_code"], c["source"], c["deadline_at"]) for c in got.values()} == {("other", "other", None)}
    assert rows(engine, CaseCategory)["other"]["name_en"] == "Other"
    assert rows(engine, CaseSource)["other"]["name_zh"] == "其他"
    lines = result.summary_lines()
    assert "  no category column: 2 cases in the default category `other` (其他 / Other)" in lines
    assert "  no source column: 2 cases in the default source `other` (其他 / Other)" in lines
    # with a category column but no categories in the store, the rows say what to load
    named = write_csv(tmp_path / "named.csv", ["id", "category", "district", "reported_at"],
                      [["C3", "Pothole", "1", "2026-11-26 09:00"]])
    assert run(engine, named, "cases").rejected == 1
    [reject] = read_rejects(named.with_name("named.rej.csv"))
    assert reject["reason"] == "unknown_category" and "--kind categories" in reject["message"]


def test_a_mapping_default_source_must_exist(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    cases = write_csv(tmp_path / "cases.csv", ["id", "district", "reported_at"], [["C1", "1", "2026-11-26 09:00"]])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("defaults: {source: fax}\n", encoding="utf-8")
    with pytest.raises(ImportError_, match=r"`defaults.source`: 'fax'"):
        run(engine, cases, "cases", mapping=mapping)


def test_the_demo_reference_goes_through_the_import_and_loads_again_unchanged(engine):
    first = {r.kind: r for r in load_reference(engine)}
    assert first["districts"].inserted == 8 and first["streets"].inserted == 84
    # the demo's GeoJSON also holds the counties around the eight districts
    assert (first["boundaries"].updated, first["boundaries"].rejected) == (5, 7)
    again = load_reference(engine)
    assert all(r.inserted == 0 and r.updated == 0 for r in again), [r.summary_lines() for r in again]
    assert {c: (s["name_zh"], s["name_en"]) for c, s in rows(engine, CaseSource).items()}["hotline"] == \
        ("12345热线", "12345 hotline")


# --- through the command line -------------------------------------------------------------------
def test_reference_kinds_through_the_cli(engine, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    path = districts_csv(tmp_path)
    assert cli.main(["import", str(path), "--kind", "districts"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 3 rows read (csv, utf-8-sig): 3 inserted, 0 updated, 0 unchanged, 0 rejected" in out
    assert "times without a zone" not in out  # districts have no times
    empty = write_csv(tmp_path / "streets.csv", ["district_code", "name"], [])
    assert cli.main(["import", str(empty), "--kind", "streets"]) == 0
    assert "0 rows read" in capsys.readouterr().out
    assert rows(engine, Department) == {}


def test_the_screens_read_the_citys_sources(engine, tmp_path):
    from dashboard.reference import ReferenceSource

    run(engine, districts_csv(tmp_path), "districts")
    run(engine, write_csv(tmp_path / "s.csv", ["code", "name_en", "name_zh"],
                          [["email", "Email", "电子邮件"], ["phone", "Phone", "电话"]]), "sources")
    ref = ReferenceSource(engine).get()
    assert list(ref.sources) == ["email", "phone"]
    assert (ref.source_name("email", "en"), ref.source_name("email", "zh-CN"), ref.source_name("fax", "en")) == \
        ("Email", "电子邮件", "fax")


def test_categories_and_sources_from_the_cases_export_itself(engine, tmp_path):
    run(engine, districts_csv(tmp_path), "districts")
    export = write_csv(tmp_path / "export.csv", ["SR", "SR_TYPE", "ORIGIN", "DIST", "CREATED"], [
        ["1", "Pothole in Street", "Phone", "1", "2026-11-26 09:00"],
        ["2", "Graffiti", "Email", "2", "2026-11-26 09:00"],
        ["3", "Pothole in Street", "Phone", "2", "2026-11-26 10:00"],
    ])
    for kind, column in (("categories", "SR_TYPE"), ("sources", "ORIGIN")):
        mapping = tmp_path / f"{kind}.yaml"
        mapping.write_text(f"columns: {{name: {column}}}\n", encoding="utf-8")
        result = run(engine, export, kind, mapping=mapping)
        assert (result.inserted, result.rejected, result.files[0].counts["superseded"]) == (2, 0, 1)
    cats = rows(engine, CaseCategory)
    long = next(c for c in cats if cats[c]["name_en"] == "Pothole in Street")
    assert len(long) == 16 and long.startswith("Pothole i~") and "Graffiti" in cats
    mapping = tmp_path / "cases.yaml"
    mapping.write_text("columns: {external_id: SR, category_code: SR_TYPE, source: ORIGIN, district_code: DIST, "
                       "reported_at: CREATED}\n", encoding="utf-8")
    assert run(engine, export, "cases", mapping=mapping).inserted == 3
    assert rows(engine, Case, "external_id")["3"]["category_code"] == long
