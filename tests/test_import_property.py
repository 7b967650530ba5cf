"""Property: whatever garbage a city's export holds, the importer does not crash, stores
every valid row, and accounts for every row (stored, or in the rejects file)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from hypothesis import HealthCheck, event, given, settings, strategies as st
from sqlalchemy import select

from datasource.importer import ImportError_, run_import
from datasource.importer.rejects import read_rejects
from datasource.schema import Case

HEADER = ["external_id", "source", "category", "district", "lat", "lon", "status",
          "reported_at", "filed_at", "closed_at", "rework_count", "extended"]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Valid rows are ASCII: a file that garbage bytes turn into GB18030 still reads them right.
SHAPES = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S+08:00", "epoch")
SH = dt.timezone(dt.timedelta(hours=8))


def fmt_time(t: dt.datetime, shape: str) -> str:
    return str(int(t.timestamp())) if shape == "epoch" else t.astimezone(SH).strftime(shape)


@st.composite
def valid_rows(draw):
    reported = draw(st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1))).replace(
        second=0, microsecond=0, tzinfo=SH)
    filed = reported + dt.timedelta(minutes=draw(st.integers(0, 600)))
    closed = filed + dt.timedelta(minutes=draw(st.integers(0, 6000)))
    steps = draw(st.integers(0, 2))
    by_point = draw(st.booleans())
    row = {
        "source": draw(st.sampled_from(["app", "hotline", "12345", "patrol", "SENSOR"])),
        "category": draw(st.sampled_from(["S05-01", "Illegal parking", "waterlogging", "B01-01"])),
        "district": "" if by_point else draw(st.sampled_from(["410105", "Jinshui", "erqi", "410190"])),
        "lat": "34.810784" if by_point else "", "lon": "113.743791" if by_point else "",
        "status": "",
        "reported_at": fmt_time(reported, draw(st.sampled_from(SHAPES))),
        "filed_at": fmt_time(filed, draw(st.sampled_from(SHAPES))) if steps >= 1 else "",
        "closed_at": fmt_time(closed, draw(st.sampled_from(SHAPES))) if steps >= 2 else "",
        "rework_count": draw(st.sampled_from(["", "0", "1", " 2 "])),
        "extended": draw(st.sampled_from(["", "Y", "N", "true", "0"])),
    }
    return row, reported


garbage_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=16)
STRUCTURAL = b'\r\n",\\'  # kept out of unquoted bytes, so that garbage stays inside its cell


def garbage_bytes(flavour: str):
    """Garbage in the file's encoding, or (flavour raw) any bytes at all: such a file
    often cannot be decoded, which is the one fatal error expected here."""
    raw = st.binary(max_size=10) if flavour == "raw" else garbage_text.map(lambda t: t.encode(flavour))
    return raw.map(lambda b: bytes(x for x in b if x not in STRUCTURAL))


@st.composite
def garbage_cells(draw, valid, flavour):
    """A valid row with random columns replaced by random text or bytes."""
    text = "utf-8" if flavour == "raw" else flavour
    cells = {}
    for col in HEADER[1:]:
        choice = draw(st.integers(0, 5))  # half the cells stay valid
        cells[col] = (valid[col].encode() if choice < 3 else draw(garbage_bytes(flavour)) if choice == 3
                      else draw(garbage_text).encode(text))
    return cells


def quote(cell: bytes) -> bytes:
    return b'"' + cell.replace(b'"', b'""') + b'"'


@given(data=st.data(), fmt=st.sampled_from(["csv", "jsonl"]))
@SETTINGS
def test_garbage_never_crashes_and_every_row_is_accounted_for(reference_engine, tmp_path, data, fmt):
    uid = uuid.uuid4().hex[:10]
    # the file's encoding; garbage text is written in it (real exports are one encoding)
    flavour = data.draw(st.sampled_from(["utf-8", "utf-8", "gb18030", "gb18030", "raw"]), label="encoding")
    text = "utf-8" if flavour == "raw" else flavour
    n = data.draw(st.integers(1, 14), label="rows")
    kinds = data.draw(st.lists(st.sampled_from(["valid", "garbage"]), min_size=n, max_size=n), label="kinds")
    junk = data.draw(st.lists(garbage_text, max_size=2), label="junk columns")
    header = HEADER + [f"junk_{i}_{j}" for i, j in enumerate(junk)]
    lines, rows = [], []  # rows: (kind, id bytes, expected reported_at or None, cells)
    for i, kind in enumerate(kinds):
        valid, reported = data.draw(valid_rows(), label=f"row {i}")
        if kind == "valid":
            ident = f"V-{uid}-{i}".encode()
            cells = {c: v.encode() for c, v in valid.items()}
        else:
            ident = data.draw(st.one_of(st.just(f"G-{uid}-{i}".encode()), garbage_text.map(lambda t: t.encode(text)),
                                        garbage_bytes(flavour)), label=f"id {i}")
            cells = data.draw(garbage_cells(valid, flavour), label=f"garbage {i}")
        extra = [data.draw(garbage_text).encode(text) for _ in junk]
        if fmt == "csv":
            line = [ident, *(cells[c] for c in HEADER[1:]), *extra]
            if kind == "garbage":  # ragged rows too
                width = data.draw(st.integers(1, len(line) + 2), label=f"width {i}")
                line = line[:width] + [b"surplus"] * (width - len(line))
            lines.append(b",".join(quote(c) for c in line))
        else:
            obj = {"external_id": ident, **cells, **dict(zip(header[len(HEADER):], extra))}
            if kind == "garbage" and data.draw(st.booleans(), label=f"raw bytes {i}"):
                lines.append(b"{" + b",".join(b'"' + k.encode() + b'":"' + v + b'"' for k, v in obj.items()) + b"}")
            else:
                obj = {k: v.decode(text, "replace") for k, v in obj.items()}
                lines.append(json.dumps(obj, ensure_ascii=False).encode(text))
                ident = obj["external_id"].encode(text)
        rows.append((kind, ident, reported if kind == "valid" else None, line if fmt == "csv" else None))
    path = tmp_path / f"{uid}.{fmt}"
    body = b"\r\n".join(lines) + b"\r\n"
    path.write_bytes((b",".join(quote(h.encode()) for h in header) + b"\r\n" if fmt == "csv" else b"") + body)
    rejects = tmp_path / f"{uid}.rejects.csv"
    # a GB18030 export of garbage (not Chinese text) is named in the mapping, as an
    # integrator would: the importer only guesses GB18030 for bytes that read as Chinese
    mapping = None
    if flavour == "gb18030":
        mapping = tmp_path / f"{uid}.yaml"
        mapping.write_text("kind: cases\nencoding: gb18030\n", encoding="utf-8")

    try:
        result = run_import(reference_engine, [path], "cases", mapping, fmt, rejects, "Asia/Shanghai", batch_size=4)
    except ImportError_ as exc:
        # the only fatal case here: bytes the named encoding (else UTF-8) cannot decode
        try:
            path.read_bytes().decode("gb18030" if mapping else "utf-8-sig")
        except UnicodeDecodeError:
            event("fatal: undecodable file")
            return
        raise AssertionError(f"fatal error for a decodable file: {exc}") from None

    encoding = result.files[0].encoding
    rejected = {int(r["line"]) for r in read_rejects(rejects)} if rejects.exists() else set()
    with reference_engine.connect() as conn:
        stored = dict(conn.execute(select(Case.external_id, Case.reported_at)).all())
    first_line = 2 if fmt == "csv" else 1
    stored_garbage = read = 0
    for number, (kind, ident, reported, cells) in enumerate(rows, start=first_line):
        key = ident.decode(encoding, "replace").replace("\x00", "").strip()
        # a CSV row of empty cells is a blank line to the importer, not a row
        blank = cells is not None and not any(c.decode(encoding, "replace").replace("\x00", "").strip()
                                              for c in cells)
        read += not blank
        if blank:
            assert number not in rejected
        elif kind == "valid":
            assert number not in rejected, (number, read_rejects(rejects))
            assert stored[key] == reported
        else:
            assert number in rejected or key in stored, (number, ident)
            stored_garbage += number not in rejected
    c = result.files[0].counts
    assert result.read == c["inserted"] + c["updated"] + c["unchanged"] + c["rejected"] + c["superseded"]
    assert c["rejected"] == len(rejected)
    assert result.read == read
    event(f"{fmt} {encoding}: {'some' if rejected else 'no'} rows rejected")
    event(f"garbage rows that were stored anyway: {'some' if stored_garbage else 'none'}")
