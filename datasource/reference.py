"""The demo city's reference data (Zhengzhou's eight inner districts) in datasource/data/,
and `load_reference`, which loads a folder of reference files into the store through the
same import a city uses (`python -m dashboard import FILE --kind districts|boundaries|
streets|categories|departments|sources`, docs/onboarding.md).

`read_districts` / `read_categories` read the demo's own files directly: the demo
generator and the screens' fallback (dashboard/reference.py) use them.
"""
from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

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


def read_sources(data_dir: Path = DATA_DIR) -> list[dict[str, str]]:
    return _read_csv(data_dir / "sources.csv")


# kind, file name (a glob) in a reference folder, in the order they refer to each other
REFERENCE_FILES = (("districts", "districts.csv"), ("boundaries", "*.geojson"), ("streets", "streets.csv"),
                   ("departments", "departments.csv"), ("categories", "categories.csv"),
                   ("sources", "sources.csv"))


def load_reference(engine: Engine, data_dir: Path = DATA_DIR) -> list:
    """Load the reference files of `data_dir` (default: the demo city's) with the import:
    each file present, in REFERENCE_FILES' order. Loading again updates what changed.
    Returns the ImportResults; rejected rows (the demo's GeoJSON also holds the counties
    around the eight districts, which match no district) are counted there, their file is
    not kept."""
    from datasource.importer import run_import

    results = []
    with tempfile.TemporaryDirectory(prefix="reference-rejects-") as tmp:
        for kind, pattern in REFERENCE_FILES:
            for path in sorted(Path(data_dir).glob(pattern)):
                results.append(run_import(engine, [path], kind, rejects=Path(tmp) / f"{kind}.rejects.csv"))
    return results
