"""The mapping file: how a city's own export maps onto the schema (YAML or JSON).

Every scalar in a mapping is read as a string (YAML's BaseLoader), so that codes such
as `0101` or `410105` and words such as `yes`/`N` stay exactly as the city wrote them.
Validation is strict: any unknown key or wrong shape is fatal and names the key.
"""
from __future__ import annotations

import codecs
import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from datasource.importer.errors import ImportError_
from datasource.importer.fields import Field
from datasource.importer.values import TimeParser

FORMATS = ("csv", "jsonl", "json", "open311", "geojson")
TOP_KEYS = ("kind", "format", "encoding", "encoding_errors", "delimiter", "header_line",
            "timezone", "time_formats", "null_values", "columns", "values", "defaults")
DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class Mapping:
    origin: str = "(no mapping)"
    kind: str | None = None
    format: str | None = None
    encoding: str | None = None
    encoding_errors: str = "strict"
    delimiter: str | None = None
    header_line: int = 1
    timezone: str | None = None
    time_formats: tuple[str, ...] = ()
    null_values: frozenset[str] = frozenset()
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def under(self, preset: "Mapping") -> "Mapping":
        """This mapping laid over a built-in preset: ours wins key by key."""
        values = {f: {**preset.values.get(f, {}), **self.values.get(f, {})}
                  for f in {*preset.values, *self.values}}
        return replace(self, columns={**preset.columns, **self.columns}, values=values,
                       defaults={**preset.defaults, **self.defaults},
                       null_values=preset.null_values | self.null_values)


def _plain(value: Any) -> Any:
    """JSON values as YAML BaseLoader gives them: strings, lists and dicts of strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_mapping_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportError_(f"mapping {path}: cannot read it: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            raw = _plain(json.loads(text))
        else:  # YAML is a superset of JSON, so anything else is read as YAML
            raw = yaml.load(text, Loader=yaml.BaseLoader)
    except (ValueError, yaml.YAMLError) as exc:
        language = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise ImportError_(f"mapping {path}: not valid {language}: {exc}") from None
    if raw in (None, ""):
        raw = {}
    if not isinstance(raw, dict):
        raise ImportError_(f"mapping {path}: expected a mapping of keys at the top, got {type(raw).__name__}")
    return raw


class _Check:
    """Validation helpers that raise ImportError_ naming the offending key."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, key: str, message: str):
        raise ImportError_(f"mapping {self.origin}: `{key}`: {message}")

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {type(value).__name__}")
        return value

    def strings(self, key: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.fail(key, f"expected a string or a list of strings, got {type(value).__name__}")
        return tuple(self.string(f"{key}[{i}]", v) for i, v in enumerate(items))

    def table(self, key: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def field(self, key: str, name: str, fields: dict[str, Field]) -> Field:
        if name not in fields:
            self.fail(key, f"unknown field {name!r}; fields of this kind: {', '.join(fields)}")
        return fields[name]


def parse_mapping(raw: dict, origin: str, fields: dict[str, Field], kinds: tuple[str, ...]) -> Mapping:
    c = _Check(origin)
    for key in raw:
        if key not in TOP_KEYS:
            c.fail(key, f"unknown key; known keys: {', '.join(TOP_KEYS)}")
    out: dict[str, Any] = {"origin": origin}
    if "kind" in raw:
        out["kind"] = c.string("kind", raw["kind"])
        if out["kind"] not in kinds:
            c.fail("kind", f"unknown kind {out['kind']!r}; known: {', '.join(kinds)}")
    if "format" in raw:
        out["format"] = c.string("format", raw["format"]).lower()
        if out["format"] not in FORMATS:
            c.fail("format", f"unknown format {out['format']!r}; known: {', '.join(FORMATS)}")
    if "encoding" in raw:
        out["encoding"] = c.string("encoding", raw["encoding"])
        try:
            codecs.lookup(out["encoding"])
        except LookupError:
            c.fail("encoding", f"unknown encoding {out['encoding']!r}")
    if "encoding_errors" in raw:
        out["encoding_errors"] = c.string("encoding_errors", raw["encoding_errors"])
        if out["encoding_errors"] not in ("strict", "replace"):
            c.fail("encoding_errors", "expected strict or replace")
    if "delimiter" in raw:
        d = c.string("delimiter", raw["delimiter"])
        d = DELIMITER_WORDS.get(d.lower(), d)
        if len(d) != 1 or d in "\r\n\"":
            c.fail("delimiter", f"expected one character (or tab), got {raw['delimiter']!r}")
        out["delimiter"] = d
    if "header_line" in raw:
        try:
            out["header_line"] = int(c.string("header_line", raw["header_line"]))
        except ValueError:
            c.fail("header_line", f"expected a line number, got {raw['header_line']!r}")
        if out["header_line"] < 1:
            c.fail("header_line", "line numbers start at 1")
    if "timezone" in raw:
        out["timezone"] = c.string("timezone", raw["timezone"])
        try:
            ZoneInfo(out["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            c.fail("timezone", f"unknown time zone {out['timezone']!r}")
    if "time_formats" in raw:
        out["time_formats"] = c.strings("time_formats", raw["time_formats"])
        for i, f in enumerate(out["time_formats"]):
            if "%" not in f:
                c.fail(f"time_formats[{i}]", f"{f!r} has no strptime directive such as %Y")
            try:  # parsing nothing fails either way; only a broken format says "directive"
                dt.datetime.strptime("", f)
            except ValueError as exc:
                if "directive" in str(exc):
                    c.fail(f"time_formats[{i}]", f"{f!r}: {exc}")
    if "null_values" in raw:
        out["null_values"] = frozenset(v.strip().lower() for v in c.strings("null_values", raw["null_values"]))
    probe = TimeParser(ZoneInfo(out.get("timezone", "UTC")), out.get("time_formats", ()))
    columns = {}
    for name, cols in c.table("columns", raw.get("columns", {})).items():
        c.field(f"columns.{name}", name, fields)
        columns[name] = tuple(x for x in c.strings(f"columns.{name}", cols) if x.strip())
    values = {}
    for name, table in c.table("values", raw.get("values", {})).items():
        f = c.field(f"values.{name}", name, fields)
        table = c.table(f"values.{name}", table)
        values[name] = {}
        for src, dst in table.items():
            dst = c.string(f"values.{name}.{src}", dst)
            if dst.strip() and f.type not in ("text", "id", "ref"):
                try:  # a target must itself be a valid value of the field
                    f.convert(dst.strip(), probe)
                except ValueError as exc:
                    c.fail(f"values.{name}.{src}", str(exc))
            values[name][src.strip()] = dst.strip()
    defaults = {}
    for name, value in c.table("defaults", raw.get("defaults", {})).items():
        f = c.field(f"defaults.{name}", name, fields)
        value = c.string(f"defaults.{name}", value).strip()
        try:
            f.convert(value, probe)
        except ValueError as exc:
            c.fail(f"defaults.{name}", str(exc))
        defaults[name] = value
    return Mapping(**out, columns=columns, values=values, defaults=defaults)


def load_mapping(path: Path, fields: dict[str, Field], kinds: tuple[str, ...]) -> Mapping:
    return parse_mapping(read_mapping_file(path), str(path), fields, kinds)
