"""The build id: what an open wall compares to know the server was updated."""
from __future__ import annotations

import functools
import hashlib

from dashboard.settings import PROJECT_ROOT

SOURCES = ("app.py", "dashboard", "layouts", "callbacks", "datasource", "assets")


@functools.lru_cache(maxsize=None)
def computed_build_id() -> str:
    """A hash of the code and assets this process runs (same files, same id on every worker)."""
    digest = hashlib.sha256()
    for top in SOURCES:
        root = PROJECT_ROOT / top
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".css", ".js", ".json", ".csv", ".geojson"}
            and "__pycache__" not in p.parts)
        for path in files:
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def build_id(settings) -> str:
    return settings["BUILD_ID"] or computed_build_id()
