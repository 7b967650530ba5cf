"""One raw row to typed field values, following the mapping: which column feeds which
field, value maps, null words, defaults, and each field's parser.

The result holds a field only when the file has a column for it (or the mapping a
default): on update, fields the file does not carry are left as stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from datasource.importer import errors as E
from datasource.importer.errors import ImportError_, RowReject
from datasource.importer.fields import Field
from datasource.importer.hints import BY_ALIAS, BY_DEFAULT, BY_MAPPING, BY_NAME, Source
from datasource.importer.mapping import Mapping
from datasource.importer.readers import RawRow
from datasource.importer.values import NULL_VALUES, TimeParser


@dataclass(slots=True)
class Rec:
    """A row on its way into the store."""
    row: RawRow
    values: dict[str, Any]
    located: str | None = None  # district found from lat/lon
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific (e.g. the enterprise of a visit)
    problems: list[RowReject] | None = None  # why the row is rejected (every problem found)


class RowParser:
    def __init__(self, fields: tuple[Field, ...], mapping: Mapping, zone: ZoneInfo):
        self.fields = fields
        self.parse_time = TimeParser(zone, mapping.time_formats)
        self.mapped = frozenset(mapping.columns)
        self.candidates = {f.name: tuple(c.casefold() for c in mapping.columns.get(f.name, (f.name, *f.aliases)))
                           for f in fields}
        self.value_maps = {name: {src.casefold(): dst for src, dst in table.items()}
                           for name, table in mapping.values.items()}
        self.defaults = mapping.defaults
        self.nulls = NULL_VALUES | mapping.null_values
        self._plans: dict[tuple[str, ...], tuple] = {}

    def plan(self, columns) -> tuple[tuple, tuple[Field, ...]]:
        """(field, column feeding it or None, value map, default) for the fields these
        columns provide, and the required fields they do not provide."""
        columns = tuple(columns)
        plan = self._plans.get(columns)
        if plan is None:
            by_key: dict[str, str] = {}
            for col in columns:
                by_key.setdefault(col.strip().casefold(), col)
            out = []
            for f in self.fields:
                col = next((by_key[c] for c in self.candidates[f.name] if c in by_key), None)
                if col is not None or f.name in self.defaults:
                    # everything the per-cell loop needs, looked up once per file
                    out.append((f, col, self.value_maps.get(f.name), self.defaults.get(f.name, "")))
            provided = {step[0].name for step in out}
            missing = tuple(f for f in self.fields if f.required and f.name not in provided)
            plan = self._plans[columns] = (tuple(out), missing)
        return plan

    def sources(self, columns) -> dict[str, Source]:
        """For each field these columns provide: the column, and how it was chosen (named
        in the mapping, or found by the field's name or one of its aliases)."""
        out = {}
        for f, col, _vmap, _default in self.plan(columns)[0]:
            if col is None:
                how = BY_DEFAULT
            elif f.name in self.mapped:
                how = BY_MAPPING
            else:
                how = BY_NAME if col.strip().casefold() == f.name.casefold() else BY_ALIAS
            out[f.name] = Source(col, how)
        return out

    def check_columns(self, columns, where: str) -> None:
        """A file whose header lacks a required field (and no default) cannot load a row."""
        missing = self.plan(columns)[1]
        if missing:
            hints = "; ".join(f"{f.name} (looked for: {', '.join(self.candidates[f.name]) or 'nothing'})"
                              for f in missing)
            raise ImportError_(f"{where}: no column for required field(s) {hints}; name the "
                               "column under `columns:` in the mapping or give a value under `defaults:`")

    def __call__(self, row: RawRow) -> dict[str, Any]:
        """The row's values; RowReject (with every problem of the row) if any cell is bad."""
        values, problems = self.parse(row)
        if problems:
            raise RowReject.of(problems)
        return values

    def parse(self, row: RawRow) -> tuple[dict[str, Any], list[RowReject]]:
        """The row's values, and the problems of its cells: every one, not only the first.
        A field whose cell is bad is left out of the values."""
        if row.problem:
            hint = ("export the file again: a row cut short is never padded" if row.problem.startswith("truncated")
                    else "check delimiter: and header_line: in the mapping" if " cells but " in row.problem else "")
            return {}, [RowReject("", E.MALFORMED_ROW, row.problem, hint)]
        cells = row.cells
        plan, missing = self.plan(cells)
        problems = []
        for f in missing:  # JSON rows name their own keys; a CSV header was checked up front
            problems.append(RowReject(f.name, E.MISSING_ID if f.name == "external_id" else E.MISSING_VALUE,
                                      f"no {f.name} (looked for: {', '.join(self.candidates[f.name])})"))
        out: dict[str, Any] = {}
        nulls, parse_time = self.nulls, self.parse_time
        for f, col, vmap, default in plan:
            text = cells.get(col, "").strip() if col is not None else ""
            if vmap and text:
                text = vmap.get(text.casefold(), text)
            if not text or text.lower() in nulls:
                text = default
            if not text:
                if f.required:
                    reason = E.MISSING_ID if f.name == "external_id" else E.MISSING_VALUE
                    problems.append(RowReject(f.name, reason, f"{f.name} is empty"
                                              + (f" (column {col!r})" if col else "")))
                    continue
                out[f.name] = None
                continue
            try:
                out[f.name] = f.convert(text, parse_time)
            except ValueError as exc:
                problems.append(RowReject(f.name, getattr(exc, "reason", None) or f.reason, str(exc),
                                          getattr(exc, "hint", "")))
        return out, problems
