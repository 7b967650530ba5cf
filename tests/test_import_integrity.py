"""An import never corrupts what is stored: a truncated export changes nothing, and a
file in a Western single-byte encoding is refused (or read right when the mapping names
it), never decoded as Chinese into mojibake."""
from __future__ import annotations

import csv

import pytest
from sqlalchemy import select

from datasource.importer.errors import ImportError_
from datasource.importer.readers import detect_encoding
from datasource.schema import Case
from tests.import_helpers import T0, run

HEADER = "external_id,source,category,district,address,status,reported_at\n"
ROWS = ["T1,app,S05-01,410105,Rue de la Paix 14,,2026-11-26 09:05\n",
        "T2,app,S05-01,410105,Main Street 3,,2026-11-26 09:10\n",
        "T3,app,S05-01,410103,Elm Street 5,,2026-11-26 09:15\n"]


def _stored(engine) -> dict:
    with engine.connect() as conn:
        return {r.external_id: (r.district_code, r.address, r.updated_at)
                for r in conn.execute(select(Case.external_id, Case.district_code, Case.address, Case.updated_at))}


def _rejects(path):
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_truncated_export_changes_nothing_stored(reference_engine, tmp_path):
    full = tmp_path / "full.csv"
    full.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    assert run(reference_engine, full, now=T0).inserted == 3
    before = _stored(reference_engine)
    # the same export cut mid-line: T3's row lost its last cell and the end of its address
    cut = tmp_path / "cut.csv"
    cut.write_text(HEADER + "".join(ROWS[:2]) + "T3,app,S05-01,410103,Elm", encoding="utf-8")
    result = run(reference_engine, cut, now=T0.replace(hour=9))
    assert (result.updated, result.unchanged, result.rejected) == (0, 2, 1)
    assert _stored(reference_engine) == before
    rejects = _rejects(tmp_path / "cut.rej.csv")
    assert [r["line"] for r in rejects] == ["4"]
    assert "truncated" in rejects[0]["message"] and "mid-line" in rejects[0]["message"]


def test_a_row_missing_cells_is_rejected_not_padded(reference_engine, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(HEADER + ROWS[0] + "T2,app,S05-01\n" + ROWS[2], encoding="utf-8")
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (2, 1)
    assert set(_stored(reference_engine)) == {"T1", "T3"}


WESTERN = HEADER + "W1,app,S05-01,410105,Ménagerie Müller Señora,,2026-11-26 09:05\n"


def test_windows_1252_is_refused_naming_the_byte_and_the_key(reference_engine, tmp_path):
    path = tmp_path / "western.csv"
    path.write_text(HEADER + "W1,app,S05-01,410105,Good address,,2026-11-26 09:05\n", encoding="utf-8")
    run(reference_engine, path, now=T0)
    path.write_bytes(WESTERN.encode("cp1252"))
    assert WESTERN.encode("cp1252").decode("gb18030")  # the trap: GB18030 "decodes" it
    with pytest.raises(ImportError_) as caught:
        run(reference_engine, path, now=T0.replace(hour=9))
    message = str(caught.value)
    assert "0xE9" in message and "line 2" in message and "`encoding:`" in message
    assert _stored(reference_engine)["W1"][1] == "Good address"  # nothing overwritten


def test_windows_1252_named_in_the_mapping_is_read_right(reference_engine, tmp_path):
    path = tmp_path / "western.csv"
    path.write_bytes(WESTERN.encode("cp1252"))
    mapping = tmp_path / "city.yaml"
    mapping.write_text("kind: cases\nencoding: cp1252\n", encoding="utf-8")
    assert run(reference_engine, path, mapping=mapping, now=T0).inserted == 1
    assert _stored(reference_engine)["W1"][1] == "Ménagerie Müller Señora"


@pytest.mark.parametrize("text", ["编号,地址\n1,花园路\n", "id,addr\n1,Main St 金水区\n",
                                  "案件编号,问题描述,所属区\nA1,井盖丢失,金水区\nA2,道路积水,二七区\n"])
def test_short_chinese_exports_are_still_read_as_gb18030(tmp_path, text):
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gbk"))
    assert detect_encoding(path, None, "strict") == "gb18030"


def test_utf8_and_the_mappings_own_encoding_need_no_detection(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("id,地址\n1,花园路 Café\n", encoding="utf-8")
    assert detect_encoding(path, None, "strict") == "utf-8-sig"
    path.write_bytes("id,addr\n1,Café\n".encode("cp1252"))
    with pytest.raises(ImportError_, match=r"`encoding:`"):
        detect_encoding(path, None, "strict")
    assert detect_encoding(path, "cp1252", "strict") == "cp1252"
    with pytest.raises(ImportError_, match=r"as utf-8: byte 0xE9 at offset 13 \(line 2\)"):
        detect_encoding(path, "utf-8", "strict")
