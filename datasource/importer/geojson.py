"""GeoJSON FeatureCollections (district boundaries): one raw row per feature.

A feature's properties are its cells (read as a CSV cell would hold them, like any
JSON value), and its geometry is the cell `geometry` (its JSON text). The row's number
is the feature's position in the collection (1 for the first), and the raw text kept
for the rejects file is the feature's properties and geometry type, not its
coordinates (a boundary can be megabytes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from datasource.importer.errors import ImportError_
from datasource.importer.readers import RawRow, _cell, _clean

GEOMETRY = "geometry"


class GeoJsonSource:
    columns = None  # every feature names its own properties

    def __init__(self, path: Path, encoding: str, errors: str):
        self.path = path
        try:
            data = json.loads(path.read_text(encoding=encoding, errors=errors).lstrip("\ufeff"))
        except ValueError as exc:
            raise ImportError_(f"{path}: not valid JSON: {exc}") from None
        if isinstance(data, dict) and data.get("type") == "Feature":
            data = {"type": "FeatureCollection", "features": [data]}
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
                or not isinstance(data.get("features"), list):
            raise ImportError_(f"{path}: expected a GeoJSON FeatureCollection (an object with "
                               "\"type\": \"FeatureCollection\" and a list of \"features\")")
        self.features = data["features"]

    def rows(self) -> Iterator[RawRow]:
        for number, feat in enumerate(self.features, start=1):
            if not isinstance(feat, dict) or feat.get("type") != "Feature":
                yield RawRow(number, _clean(json.dumps(feat, ensure_ascii=False)[:500]), {},
                             "not a GeoJSON Feature")
                continue
            props = feat.get("properties") or {}
            if not isinstance(props, dict):
                yield RawRow(number, "", {}, "the feature's properties are not an object")
                continue
            cells = {str(k).strip(): _cell(v) for k, v in props.items()}
            geometry = feat.get("geometry")
            cells[GEOMETRY] = json.dumps(geometry, separators=(",", ":")) if geometry else ""
            kind = geometry.get("type") if isinstance(geometry, dict) else None
            raw = _clean(json.dumps({"properties": props, "geometry": kind}, ensure_ascii=False))
            yield RawRow(number, raw, cells)
