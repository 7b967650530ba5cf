"""run_import: files -> raw rows -> typed records -> batches written to the store.

Every file is opened and checked (format, encoding, header, mapping) before any row is
written, so a fatal error leaves the store as it was. Then each file is read in
batches; a batch is parsed, resolved, de-duplicated and written in one transaction,
so the valid rows of a batch are committed together and a bad row never stops them.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError

from datasource.importer import errors as E
from datasource.importer import hints
from datasource.importer.errors import ImportError_, RowReject
from datasource.importer.kinds import KINDS
from datasource.importer.kinds.base import KindSpec
from datasource.importer.lookups import Reference
from datasource.importer.mapping import Mapping, load_mapping
from datasource.importer.readers import RawRow, open_source
from datasource.importer.rejects import RejectsWriter, default_path
from datasource.importer.rowparse import Rec, RowParser
from datasource.profile import stored_timezone

BATCH_SIZE = 5000
# reference-typed fields whose mapped values and defaults can be checked before the import
_CHECKABLE = {"district_code": "district", "enterprise_district": "district",
              "category_code": "category", "category_name": "category", "source": "source"}


@dataclass
class FileStats:
    path: Path
    format: str
    encoding: str
    read: int = 0
    counts: Counter = field(default_factory=Counter)
    # rejected rows per (field, reason), the first of each (line, message, cell), and where
    # each field's column came from: what the summary needs to name the fix
    problems: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def line(self) -> str:
        c = self.counts
        text = (f"{self.path}: {self.read:,} rows read ({self.format}, {self.encoding}): "
                f"{c['inserted']:,} inserted, {c['updated']:,} updated, "
                f"{c['unchanged']:,} unchanged, {c['rejected']:,} rejected")
        if c["superseded"]:
            text += f", {c['superseded']:,} superseded by a later row with the same id"
        return text

    def extra_lines(self) -> list[str]:
        c, out = self.counts, []
        if c["events"]:
            out.append(f"  case events written: {c['events']:,}")
        if c["enterprises_inserted"] or c["enterprises_updated"]:
            out.append(f"  enterprises from the rows: {c['enterprises_inserted']:,} inserted, "
                       f"{c['enterprises_updated']:,} updated")
        if c["facilities_inserted"] or c["facilities_updated"]:
            out.append(f"  facilities from the rows: {c['facilities_inserted']:,} inserted, "
                       f"{c['facilities_updated']:,} updated")
        if c["above_capacity"] or c["below_zero"]:
            out.append(f"  readings out of range, stored as read and clamped to [0, capacity] in the KPIs: "
                       f"{c['above_capacity']:,} above capacity, {c['below_zero']:,} below zero")
        if c["merged"]:
            out.append(f"  features merged into the boundary of a district an earlier feature named: "
                       f"{c['merged']:,}")
        for what in ("category", "source"):
            if c[f"default_{what}"]:
                out.append(f"  no {what} column: {c[f'default_{what}']:,} cases in the default {what} "
                           f"`other` (其他 / Other)")
        out += hints.dominant_lines(self.read, c["rejected"], self.problems, self.examples, self.sources)
        return out


@dataclass
class ImportResult:
    kind: str
    files: list[FileStats]
    rejects_path: Path
    reasons: Counter
    timezone: str = ""  # the zone naive times were read in
    timezone_from: str = ""  # where it came from: the mapping, the city profile or the setting
    notes: list[str] = field(default_factory=list)  # the kind's own lines (what the files left out)
    times: bool = True  # the kind has time fields (the zone is worth stating)

    def total(self, outcome: str) -> int:
        return sum(f.counts[outcome] for f in self.files)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def inserted(self) -> int:
        return self.total("inserted")

    @property
    def updated(self) -> int:
        return self.total("updated")

    @property
    def unchanged(self) -> int:
        return self.total("unchanged")

    @property
    def rejected(self) -> int:
        return self.total("rejected")

    def summary_lines(self) -> list[str]:
        lines = []
        if self.times and self.timezone:
            lines.append(f"times without a zone read in {self.timezone} ({self.timezone_from})")
        for f in self.files:
            lines += [f.line(), *f.extra_lines()]
        lines += self.notes
        if len(self.files) > 1:
            lines.append(f"total: {self.read:,} rows read: {self.inserted:,} inserted, "
                         f"{self.updated:,} updated, {self.unchanged:,} unchanged, "
                         f"{self.rejected:,} rejected")
        if self.rejected:
            lines.append("rejected by reason: " + ", ".join(
                f"{reason} {n:,}" for reason, n in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
                + (" (a row with several problems counts under each)"
                   if sum(self.reasons.values()) > self.rejected else ""))
            lines.append(f"rejected rows are in {self.rejects_path}")
        else:
            lines.append("no rows rejected")
        return lines


def _spec(kind: str) -> KindSpec:
    spec = KINDS.get(kind)
    if spec is None:
        raise ImportError_(f"unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return spec


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportError_(f"{where}: unknown time zone {name!r}") from None


def _check_references(mapping: Mapping, ref: Reference) -> None:
    """Mapped values and defaults that name a district, category or source must exist."""
    for name, what in _CHECKABLE.items():
        resolve = {"district": ref.district, "category": ref.category, "source": ref.source}[what]
        checks = [(f"defaults.{name}", mapping.defaults.get(name))]
        checks += [(f"values.{name}.{src}", dst) for src, dst in mapping.values.get(name, {}).items()]
        for key, value in checks:
            if value:
                try:
                    resolve(value)
                except RowReject as exc:
                    raise ImportError_(f"mapping {mapping.origin}: `{key}`: {exc.message}") from None


class _Importer:
    def __init__(self, engine: Engine, spec: KindSpec, ref: Reference, writer: RejectsWriter,
                 batch_size: int, now: dt.datetime | None):
        self.engine, self.spec, self.ref, self.writer = engine, spec, ref, writer
        self.batch_size, self.now = batch_size, now
        self.seen: set = set()  # keys of the rows written (for the kind's report)

    def run_file(self, source, parser: RowParser, stats: FileStats) -> None:
        rows = source.rows()
        while batch := list(islice(rows, self.batch_size)):
            stats.read += len(batch)
            self._batch(batch, parser, stats)

    def _batch(self, rows: list[RawRow], parser: RowParser, stats: FileStats) -> None:
        """Every problem of a row is collected (its cells, then its references) before the
        row is rejected, so that one pass over an export shows all that is wrong with it."""
        recs, rejected = [], []
        for row in rows:
            values, problems = parser.parse(row)
            rec = Rec(row, values)
            if problems:
                rec.problems = problems
                if row.problem:  # a malformed record has no cells to check further
                    rejected.append(rec)
                    continue
            recs.append(rec)
        if self.spec.locate:
            self._locate(recs)
        finished = []
        for rec in recs:
            try:
                self.spec.finish(rec, self.ref)
            except RowReject as exc:
                rec.problems = (rec.problems or []) + exc.problems
            except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
                # a row already rejected lacks the values of its bad cells, which the
                # kind's derivations may trip on: its problems so far are what it reports
                if not rec.problems:
                    raise
            (rejected if rec.problems else finished).append(rec)
        if rejected and self.spec.check is not None:
            self._check(rejected)
        counts, store_rejects = self._write(finished)
        out = [(rec.row, rec.problems) for rec in rejected] + [(row, exc.problems) for row, exc in store_rejects]
        stats.counts.update(counts)
        stats.counts["rejected"] += len(out)
        for row, problems in sorted(out, key=lambda item: item[0].line):
            sources = parser.sources(row.cells) if not row.problem else {}
            self.writer.write_problems(str(stats.path), row.line, [
                (p.field, p.reason, hints.message(p, sources.get(p.field))) for p in problems], row.raw)
            for p in problems:
                key = (p.field, p.reason)
                if key not in stats.examples:
                    source = sources.get(p.field)
                    stats.examples[key] = (row.line, p.message, row.cells.get(source.column, "")
                                           if source and source.column else "", p.hint)
                    if source is not None:
                        stats.sources.setdefault(p.field, source)
            stats.problems.update({(p.field, p.reason) for p in problems})
        self.writer.flush()

    def _check(self, recs: list[Rec]) -> None:
        """The kind's read-only reference checks, for rows rejected for other reasons."""
        try:
            with self.engine.connect() as conn:
                found = self.spec.check(conn, recs, self.ref)
        except (OperationalError, ProgrammingError, DataError):
            return  # a diagnosis only: the rows are rejected anyway
        for rec, exc in found:
            rec.problems = (rec.problems or []) + exc.problems

    def _locate(self, recs: list[Rec]) -> None:
        """District by point-in-polygon, for the whole batch at once."""
        todo = [r for r in recs if not r.values.get("district_code")
                and r.values.get("lat") is not None and r.values.get("lon") is not None]
        if todo:
            lon = np.array([r.values["lon"] for r in todo], dtype=float)
            lat = np.array([r.values["lat"] for r in todo], dtype=float)
            for rec, code in zip(todo, self.ref.locate(lon, lat)):
                rec.located = code

    def _store(self, conn, recs: list[Rec], now: dt.datetime) -> tuple[Counter, list]:
        """Prepare against the store, let the last row per key win, write. Rows prepare
        rejects drop out before the last-wins step, so they never hide an earlier valid row."""
        rejects, prepared = self.spec.prepare(conn, recs, self.ref, now)
        refused = {id(rec) for rec, _ in rejects}
        latest: dict = {}
        for rec in recs:
            if id(rec) not in refused:
                latest.pop(key := self.spec.key(rec), None)
                latest[key] = rec
        counts = self.spec.store(conn, list(latest.values()), self.ref, now) + prepared
        counts["superseded"] += len(recs) - len(refused) - len(latest)
        if self.spec.report is not None:
            self.seen.update(latest)
        return counts, [(rec.row, exc) for rec, exc in rejects]

    def _write(self, recs: list[Rec]) -> tuple[Counter, list]:
        if not recs:
            return Counter(), []
        now = self.now or dt.datetime.now(dt.timezone.utc)
        try:
            with self.engine.begin() as conn:
                return self._store(conn, recs, now)
        except (IntegrityError, DataError):
            pass
        # The store refused the batch (a constraint the checks above did not foresee, or
        # a concurrent writer): write row by row so that only the offending rows fail.
        counts, rejects = Counter(), []
        for rec in recs:
            try:
                with self.engine.begin() as conn:
                    one, refused = self._store(conn, [rec], now)
            except (IntegrityError, DataError) as exc:
                message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                rejects.append((rec.row, RowReject("", E.STORE_ERROR, message)))
                continue
            counts.update(one)
            rejects += refused
        return counts, rejects


def run_import(engine: Engine, files: list[Path], kind: str, mapping: Path | None = None,
               fmt: str | None = None, rejects: Path | None = None, tz: str = "Asia/Shanghai", *,
               batch_size: int = BATCH_SIZE, now: dt.datetime | None = None) -> ImportResult:
    """Load `files` of `kind` into the store. Raises ImportError_ for fatal problems;
    bad rows go to the rejects file. `now` fixes updated_at (tests)."""
    spec = _spec(kind)
    files = [Path(f) for f in files]
    if not files:
        raise ImportError_("no input files")
    user = load_mapping(Path(mapping), spec.field_map, tuple(KINDS)) if mapping else Mapping()
    if user.kind and user.kind != kind:
        raise ImportError_(f"mapping {user.origin}: `kind`: the mapping is for {user.kind}, "
                           f"the import is --kind {kind}")
    zone_from = "the mapping's `timezone:`" if user.timezone else None
    if zone_from is None:
        try:  # the city profile's zone is the deployment's; DASHBOARD_TIMEZONE (tz) only without one
            stored = stored_timezone(engine)
        except (OperationalError, ProgrammingError):
            stored = None  # an unmigrated store: said below, once the reference is read
        tz, zone_from = (stored, "the city profile") if stored else (tz, "DASHBOARD_TIMEZONE")
    zone = _zone(user.timezone, f"mapping {user.origin}: `timezone`") if user.timezone else _zone(tz, zone_from)
    if fmt is None and user.format is None and spec.formats == ("geojson",):
        fmt = "geojson"  # a .json FeatureCollection, whatever its first key

    sources, parsers = [], {}
    for path in files:  # open and check every file before writing anything
        source = open_source(path, fmt or user.format, user.encoding, user.encoding_errors,
                             user.delimiter, user.header_line, spec.formats, kind)
        if source.format not in parsers:
            preset = spec.presets.get(source.format)
            parsers[source.format] = RowParser(spec.fields, user.under(preset) if preset else user, zone)
        if source.columns is not None:
            parsers[source.format].check_columns(source.columns, str(path))
        sources.append(source)

    try:
        with engine.connect() as conn:
            ref = Reference(conn)
    except (OperationalError, ProgrammingError) as exc:
        raise ImportError_(f"cannot read the store's reference tables ({exc.orig}); "
                           "is it migrated? `python -m dashboard db upgrade`") from None
    if not ref.district_codes and spec.needs_districts:
        raise ImportError_("the store has no districts: load them first with `python -m dashboard import "
                           "DISTRICTS.csv --kind districts` (docs/onboarding.md)")
    _check_references(user, ref)

    rejects_path = Path(rejects) if rejects else default_path(files[0])
    inputs = {p.resolve() for p in files} | ({Path(mapping).resolve()} if mapping else set())
    if rejects_path.resolve() in inputs:
        raise ImportError_(f"the rejects file {rejects_path} would overwrite an input file")
    writer = RejectsWriter(rejects_path)
    importer = _Importer(engine, spec, ref, writer, batch_size, now)
    stats = []
    try:
        for source in sources:
            stats.append(FileStats(source.path, source.format, source.encoding))
            importer.run_file(source, parsers[source.format], stats[-1])
    finally:
        writer.close()
    notes = []
    if spec.report is not None:
        with engine.connect() as conn:
            notes = spec.report(conn, importer.seen)
    times = any(f.type in ("time", "date") for f in spec.fields)
    return ImportResult(kind, stats, writer.path, writer.reasons, zone.key, zone_from, notes, times)
