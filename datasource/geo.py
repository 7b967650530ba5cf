"""Small geometry helpers for the demo city: points inside district polygons."""
from __future__ import annotations

import numpy as np


def _rings(geometry: dict) -> list[np.ndarray]:
    """Outer rings of a Polygon or MultiPolygon as (n, 2) arrays of lon/lat."""
    if geometry["type"] == "Polygon":
        polys = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polys = geometry["coordinates"]
    else:
        raise ValueError(f"unsupported geometry {geometry['type']}")
    return [np.asarray(p[0], dtype=float) for p in polys]


def contains(geometry: dict, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Even-odd ray casting over every outer ring; vectorised over the points."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    inside = np.zeros(lon.shape, dtype=bool)
    for ring in _rings(geometry):
        x1, y1 = ring[:-1, 0], ring[:-1, 1]
        x2, y2 = ring[1:, 0], ring[1:, 1]
        for a, b, c, d in zip(x1, y1, x2, y2):
            crosses = (b > lat) != (d > lat)
            with np.errstate(divide="ignore", invalid="ignore"):
                xint = a + (lat - b) * (c - a) / (d - b)
            inside ^= crosses & (lon < xint)
    return inside


def sample_points(rng: np.random.Generator, n: int, geometry: dict | None,
                  center: tuple[float, float], spread: float = 0.03) -> np.ndarray:
    """n points (lon, lat) inside the polygon, or around the centre when there is none."""
    if geometry is None:
        return np.column_stack([rng.normal(center[0], spread, n), rng.normal(center[1], spread * 0.8, n)])
    rings = _rings(geometry)
    allpts = np.vstack(rings)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform(lo, hi, size=(max(4 * n, 16), 2))
        out = np.vstack([out, cand[contains(geometry, cand[:, 0], cand[:, 1])]])
    return out[:n]


def centroid(geometry: dict) -> tuple[float, float]:
    """The area-weighted centre (lon, lat) of a Polygon or MultiPolygon's outer rings;
    the mean of the points when the rings have no area."""
    rings = _rings(geometry)
    area = cx = cy = 0.0
    for ring in rings:
        x, y = ring[:, 0], ring[:, 1]
        cross = x[:-1] * y[1:] - x[1:] * y[:-1]
        a = cross.sum() / 2
        if a:
            area += a
            cx += ((x[:-1] + x[1:]) * cross).sum() / 6
            cy += ((y[:-1] + y[1:]) * cross).sum() / 6
    if abs(area) < 1e-15:
        pts = np.vstack(rings)
        return float(pts[:, 0].mean()), float(pts[:, 1].mean())
    return float(cx / area), float(cy / area)
