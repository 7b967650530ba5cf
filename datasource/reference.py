"""Reference data as data: districts (with geometry), streets and case categories.

The defaults live in datasource/data/ (Zhengzhou's eight inner districts). A city
brings its own by pointing `load_reference` at its own folder with the same files.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from datasource.schema import CaseCategory, District, Street

DATA_DIR = Path(__file__).resolve().parent / "data"
GEOJSON = "zhengzhou-410100.geojson"


@dataclass(frozen=True)
class DistrictRow:
    code: str
    name_zh: str
    short_zh: str
    name_en: str
    kind: str
    sort_order: int
    center_lon: float | None
    center_lat: float | None
    geometry: dict | None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def read_districts(data_dir: Path = DATA_DIR) -> list[DistrictRow]:
    """Districts from districts.csv, with polygons and centroids from the GeoJSON when it has them."""
    features = {}
    geo_path = data_dir / GEOJSON
    if geo_path.exists():
        for feat in json.loads(geo_path.read_text(encoding="utf-8"))["features"]:
            features[str(feat["properties"].get("adcode"))] = feat
    rows = []
    for r in _read_csv(data_dir / "districts.csv"):
        feat = features.get(r["code"])
        lon, lat = float(r["center_lon"] or "nan"), float(r["center_lat"] or "nan")
        if feat and feat["properties"].get("centroid"):
            lon, lat = feat["properties"]["centroid"]
        rows.append(DistrictRow(r["code"], r["name_zh"], r["short_zh"], r["name_en"], r["kind"],
                                int(r["sort_order"]), lon, lat,
                                feat["geometry"] if feat else None))
    return rows


def read_streets(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    return _read_csv(data_dir / "streets.csv")


def read_categories(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    return _read_csv(data_dir / "categories.csv")


def load_reference(engine: Engine, data_dir: Path = DATA_DIR) -> None:
    """Write districts, streets and categories into an empty store (idempotent)."""
    with engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(District)).scalar_one():
            return
        conn.execute(insert(District), [
            {"code": d.code, "name_zh": d.name_zh, "short_zh": d.short_zh, "name_en": d.name_en,
             "kind": d.kind, "sort_order": d.sort_order, "center_lon": d.center_lon,
             "center_lat": d.center_lat,
             "geometry": json.dumps(d.geometry, ensure_ascii=False) if d.geometry else None}
            for d in read_districts(data_dir)])
        streets = read_streets(data_dir)
        counters: dict[str, int] = {}
        rows = []
        for i, s in enumerate(streets, start=1):
            n = counters[s["district_code"]] = counters.get(s["district_code"], 0) + 1
            rows.append({"id": i, "code": f"{s['district_code']}{n:03d}",
                         "district_code": s["district_code"], "name_zh": s["name_zh"],
                         "name_en": s.get("name_en") or None})
        conn.execute(insert(Street), rows)
        cats = read_categories(data_dir)
        # parents first so the self-reference holds
        for parent_pass in (True, False):
            batch = [{"code": c["code"], "parent_code": c["parent_code"] or None, "kind": c["kind"],
                      "name_zh": c["name_zh"], "name_en": c["name_en"],
                      "time_limit_hours": float(c["time_limit_hours"]) if c["time_limit_hours"] else None,
                      "department": c["department"] or None}
                     for c in cats if (not c["parent_code"]) == parent_pass]
            if batch:
                conn.execute(insert(CaseCategory), batch)

