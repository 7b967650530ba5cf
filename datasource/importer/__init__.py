"""Load a city's own exports into the incident store (`python -m dashboard import`).

    result = run_import(engine, [Path("cases.csv")], "cases", mapping=Path("city.yaml"),
                        fmt=None, rejects=None, tz="Asia/Shanghai")
    result.rejected, result.summary_lines()

Modules, one job each: readers (files to raw rows; geojson: a FeatureCollection's
features), mapping (the mapping file), rowparse + fields + values + vocab (raw rows to
typed values), lookups (districts, categories, sources, departments, streets, grids),
kinds/* (what each kind derives and how it is written; reference.py: the reference
data a city loads first), store (batch upsert), rejects (the rejects file), pipeline
(run_import; the zone of naive times: the mapping's, the city profile's, else `tz`).
See docs/import.md.
"""
from datasource.importer.errors import ImportError_, RowReject
from datasource.importer.pipeline import FileStats, ImportResult, run_import

__all__ = ["ImportError_", "ImportResult", "FileStats", "RowReject", "run_import"]
