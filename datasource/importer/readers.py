"""Reading export files into raw rows: format and encoding detection, CSV, JSON lines,
JSON arrays (Open311 GeoReport v2 included).

A raw row is the row's line number (where the record starts in the file, counting
the CSV header as line 1), its original text (for the rejects file) and its cells
as strings keyed by column name. Opening a file checks everything that could make it
unreadable (format, encoding, header, JSON syntax) before a single row is imported.
"""
from __future__ import annotations

import codecs
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from datasource.importer.errors import ImportError_

EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".geojson": "geojson"}
FORMAT_ALIASES = {"ndjson": "jsonl", "georeport": "open311"}
CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
_CHUNK = 1 << 20
_GEOJSON_TYPE = re.compile(r'^\{\s*(?:"[^"]*"\s*:\s*(?:"[^"]*"|[^,{}\[\]]*)\s*,\s*)*"type"\s*:\s*"Feature(?:Collection)?"')

csv.field_size_limit(1 << 24)  # long free-text cells are data, not an attack


@dataclass(slots=True)
class RawRow:
    line: int
    raw: str
    cells: dict[str, str]
    problem: str | None = None  # set when the record itself is malformed


def _clean(text: str) -> str:
    """No NULs (PostgreSQL cannot store them) and no lone surrogates (JSON can escape
    them, UTF-8 cannot encode them)."""
    text = text.replace("\x00", "")
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _cell(value) -> str:
    """A JSON value as the string a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _clean(json.dumps(value, ensure_ascii=False))


def _json_record(obj, line: int, raw: str) -> RawRow:
    if not isinstance(obj, dict):
        return RawRow(line, raw, {}, f"expected a JSON object, got {type(obj).__name__}")
    return RawRow(line, raw, {str(k).strip(): _cell(v) for k, v in obj.items()})


def detect_encoding(path: Path, encoding: str | None, errors: str) -> str:
    """The mapping's encoding, else UTF-8 (with or without BOM), UTF-16 when the file
    starts with its BOM, else GB18030 (a superset of GBK/GB2312, which Chinese Excel
    exports use) only when the bytes read as Chinese text. Anything else is refused with
    the first byte UTF-8 cannot read: GB18030 decodes most Western single-byte text
    too (Windows-1252 "Ménage" is "M閚age"), which would store mojibake as data."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ImportError_(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if encoding:
        if errors == "strict":
            _decode_whole(path, encoding)
        return encoding
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if errors == "strict":
            _decode_whole(path, "utf-16")
        return "utf-16"
    if errors != "strict":
        return "utf-8-sig"
    try:
        _decode_whole(path, "utf-8-sig")
        return "utf-8-sig"
    except ImportError_ as not_utf8:
        utf8_failure = not_utf8
    try:
        _decode_whole(path, "gb18030")
    except ImportError_:
        looks_chinese = False
    else:
        looks_chinese = _reads_as_chinese(path)
    if looks_chinese:
        return "gb18030"
    guess = _guess(path)
    raise ImportError_(f"{utf8_failure.args[0]}; it is not UTF-8 and does not read as Chinese GB18030"
                       + (f" (it looks like {guess})" if guess else "")
                       + f"; set `encoding:` in the mapping (for example `encoding: {guess or 'cp1252'}`), "
                       "or `encoding_errors: replace` to accept damaged bytes")


def _decode_whole(path: Path, enc: str) -> None:
    """Raise ImportError_ naming the first byte `enc` cannot decode, with its line."""
    decoder = codecs.getincrementaldecoder(enc)("strict")
    offset, lines = 0, 1
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = max(0, exc.start)
                    byte = chunk[at:at + 1] or b"?"
                    line = lines + chunk.count(b"\n", 0, at)
                    raise ImportError_(f"{path}: cannot decode the file as {enc}: byte 0x{byte.hex().upper()} "
                                       f"at offset {offset + at} (line {line})") from None
                offset += len(chunk)
                lines += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportError_(f"{path}: cannot decode the file as {enc}: it ends inside a character") from None


def _reads_as_chinese(path: Path, sample: int = 1 << 20) -> bool:
    """Do the file's non-ASCII characters look like Chinese text? Nearly all of a GBK
    export's characters lie in GB2312's common set, where a Western byte followed by an
    ASCII letter never lands; and a maintained detector must also rank GB18030 a fit."""
    from charset_normalizer import from_bytes

    with path.open("rb") as fh:
        raw = fh.read(sample)
    text = raw.decode("gb18030", errors="ignore")
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return True
    common = 0
    for c in wide:
        try:
            c.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    if common < 0.9 * len(wide):
        return False
    found = from_bytes(raw, cp_isolation=list(_DETECT_AMONG))
    return any(m.encoding in ("gb18030", "gbk", "gb2312") for m in found)


_DETECT_AMONG = ("gb18030", "cp1252", "latin_1", "big5", "shift_jis", "euc_kr", "cp1251", "cp1250",
                 "iso8859_15", "mac_roman")


def _guess(path: Path, sample: int = 1 << 20) -> str | None:
    from charset_normalizer import from_bytes

    with path.open("rb") as fh:
        best = from_bytes(fh.read(sample), cp_isolation=list(_DETECT_AMONG)).best()
    return best.encoding if best is not None else None


def detect_format(path: Path, fmt: str | None, encoding: str) -> str:
    if fmt:
        fmt = FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if fmt not in ("csv", "jsonl", "json", "open311", "geojson"):
            raise ImportError_(f"{path}: unknown format {fmt!r}; use csv, jsonl, json, open311 or geojson")
        return fmt
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if suffix == ".json":
        with path.open(encoding=encoding, errors="replace") as fh:
            head = fh.read(1 << 16).lstrip("\ufeff \t\r\n")
        if head.startswith("{"):
            # a FeatureCollection on one line (or pretty-printed) is GeoJSON, not JSON lines
            return "geojson" if _GEOJSON_TYPE.search(head[:4096]) else "jsonl"
        if head.startswith("["):
            first = head[1:].lstrip()
            return "open311" if first.startswith("{") and '"service_request_id"' in head else "json"
        raise ImportError_(f"{path}: a .json file must hold a JSON array or JSON lines")
    raise ImportError_(f"{path}: cannot tell the format from the extension {suffix!r}; "
                       "give --format csv, jsonl, json, open311 or geojson")


class CsvSource:
    """Rows of a delimited text file with a header line."""

    def __init__(self, path: Path, encoding: str, errors: str, delimiter: str | None, header_line: int):
        self.path, self.encoding, self.errors = path, encoding, errors
        self.header_line = header_line
        with path.open(encoding=encoding, errors=errors, newline="") as fh:
            lines = [fh.readline() for _ in range(header_line)]
        header_text = lines[-1].replace("\x00", "")
        if not header_text.strip():
            raise ImportError_(f"{path}: line {header_line} should be the header but is empty"
                               + (" (the file is empty)" if not any(lines) else ""))
        # the header's most frequent candidate; ties go to the comma (the list's order)
        self.delimiter = delimiter or max(CANDIDATE_DELIMITERS, key=header_text.count)
        names = next(csv.reader([header_text], delimiter=self.delimiter))
        self.header = []
        for name in (n.strip().lstrip("\ufeff").strip() for n in names):
            # a repeated column name gets a suffix (备注, 备注.2) so that both can be mapped
            base, k = name, 1
            while name in self.header:
                k += 1
                name = f"{base}.{k}"
            self.header.append(name)
        if not any(self.header):
            raise ImportError_(f"{path}: the header on line {header_line} has no column names")

    @property
    def columns(self) -> list[str]:
        return self.header

    def rows(self) -> Iterator[RawRow]:
        with self.path.open(encoding=self.encoding, errors=self.errors, newline="") as fh:
            consumed: list[str] = []
            count = 0

            def lines():  # feeds the csv reader and remembers each record's text
                nonlocal count
                for text in fh:
                    count += 1
                    if count <= self.header_line:
                        continue  # title lines above the header, and the header itself
                    consumed.append(text)
                    yield text.replace("\x00", "") if "\x00" in text else text

            reader = csv.reader(lines(), delimiter=self.delimiter)
            header = self.header
            width = len(header)
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # e.g. a field over the size limit
                    first, raw = count - len(consumed) + 1, _record_text(consumed)
                    consumed.clear()
                    yield RawRow(first, raw, {}, f"CSV: {exc}")
                    continue
                first, raw = count - len(consumed) + 1, _record_text(consumed)
                cut = bool(consumed) and not consumed[-1].endswith(("\n", "\r"))
                consumed.clear()
                if not any(c.strip() for c in cells):
                    continue  # blank lines and rows of empty cells are not rows
                problem = None
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    problem = f"{len(cells)} cells but the header has {width} columns"
                elif len(cells) < width:
                    # never padded: a row cut short (a truncated export's last line) would
                    # otherwise update a stored record with empty and half-written cells
                    problem = (f"truncated: {len(cells)} cells but the header has {width} columns"
                               + (" (the file ends mid-line)" if cut else ""))
                yield RawRow(first, raw, dict(zip(header, cells)), problem)


def _record_text(lines: list[str]) -> str:
    return "".join(lines).replace("\x00", "").rstrip("\r\n")


class JsonLinesSource:
    """One JSON object per line; a line that is not an object is a malformed row."""

    def __init__(self, path: Path, encoding: str, errors: str):
        self.path, self.encoding, self.errors = path, encoding, errors

    columns = None  # every line names its own keys

    def rows(self) -> Iterator[RawRow]:
        with self.path.open(encoding=self.encoding, errors=self.errors, newline="") as fh:
            for number, text in enumerate(fh, start=1):
                text = text.replace("\x00", "").lstrip("\ufeff").strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except ValueError as exc:
                    yield RawRow(number, text, {}, f"not valid JSON: {exc}")
                    continue
                yield _json_record(obj, number, text)


class JsonArraySource:
    """A JSON array of objects (Open311 GeoReport v2 requests are one). Broken JSON is
    fatal, because nothing after the error can be located reliably."""

    def __init__(self, path: Path, encoding: str, errors: str):
        self.path = path
        text = path.read_text(encoding=encoding, errors=errors).lstrip("\ufeff")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ImportError_(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise ImportError_(f"{path}: expected a JSON array of objects, got {type(data).__name__}")
        self.text = text

    columns = None

    def rows(self) -> Iterator[RawRow]:
        # walk the array again with raw_decode to learn where each element starts
        text, decoder = self.text, json.JSONDecoder()
        pos = _skip(text, 0) + 1  # past '['
        line, counted = 1, 0
        while True:
            pos = _skip(text, pos)
            if text[pos] == "]":
                return
            obj, end = decoder.raw_decode(text, pos)
            line += text.count("\n", counted, pos)
            counted = pos
            yield _json_record(obj, line, _clean(json.dumps(obj, ensure_ascii=False)))
            pos = _skip(text, end)
            if text[pos] == ",":
                pos += 1


def _skip(text: str, pos: int) -> int:
    while text[pos] in " \t\r\n":
        pos += 1
    return pos


def open_source(path: Path, fmt: str | None, encoding: str | None, errors: str,
                delimiter: str | None, header_line: int, allowed: tuple[str, ...] | None = None,
                what: str = "these rows"):
    """A source with `.format`, `.columns` (None when rows name their own) and `.rows()`."""
    if not path.is_file():
        raise ImportError_(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    enc = detect_encoding(path, encoding, errors)
    kind = detect_format(path, fmt, enc)
    if allowed is not None and kind not in allowed:
        raise ImportError_(f"{path}: format {kind} cannot hold {what}; use {', '.join(allowed)}")
    if kind == "csv":
        source = CsvSource(path, enc, errors, delimiter, header_line)
    elif kind == "jsonl":
        source = JsonLinesSource(path, enc, errors)
    elif kind == "geojson":
        from datasource.importer.geojson import GeoJsonSource

        source = GeoJsonSource(path, enc, errors)
    else:
        source = JsonArraySource(path, enc, errors)
    source.format = kind
    source.encoding = enc
    return source
