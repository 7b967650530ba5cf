"""Ids holding invisible (zero-width) or text-direction (bidi) characters are refused at
import: two ids that look alike would be two cases, and a bidi control reorders the text
wherever the id is shown. The reject names the row's line, the field and the character."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from datasource.importer.rejects import read_rejects
from datasource.schema import Case, ParkingFacility
from tests.import_helpers import T0, run, write_csv

HIDDEN = {"\u200b": "ZERO WIDTH SPACE", "\u200c": "ZERO WIDTH NON-JOINER", "\u200d": "ZERO WIDTH JOINER",
          "\u200e": "LEFT-TO-RIGHT MARK", "\u200f": "RIGHT-TO-LEFT MARK", "\u2060": "WORD JOINER",
          "\ufeff": "ZERO WIDTH NO-BREAK SPACE", "\u202a": "LEFT-TO-RIGHT EMBEDDING",
          "\u202b": "RIGHT-TO-LEFT EMBEDDING", "\u202c": "POP DIRECTIONAL FORMATTING",
          "\u202d": "LEFT-TO-RIGHT OVERRIDE", "\u202e": "RIGHT-TO-LEFT OVERRIDE",
          "\u2066": "LEFT-TO-RIGHT ISOLATE", "\u2067": "RIGHT-TO-LEFT ISOLATE",
          "\u2068": "FIRST STRONG ISOLATE", "\u2069": "POP DIRECTIONAL ISOLATE", "\x07": "CONTROL CHARACTER"}
HEADER = ["external_id", "source", "category", "district", "reported_at"]


def test_case_ids_with_hidden_characters_are_rejected(reference_engine, tmp_path):
    rows = [["OK-1", "app", "S05-01", "410105", "2026-11-26 09:05"]]
    rows += [[f"ZZ{ch}{i:03d}", "app", "S05-01", "410105", "2026-11-26 09:05"] for i, ch in enumerate(HIDDEN)]
    rows.append(["OK-2", "app", "S05-01", "410105", "2026-11-26 09:05"])
    path = write_csv(tmp_path / "cases.csv", HEADER, rows)
    result = run(reference_engine, path, now=T0)
    assert (result.inserted, result.rejected) == (2, len(HIDDEN))
    with reference_engine.connect() as conn:
        assert sorted(conn.execute(select(Case.external_id)).scalars()) == ["OK-1", "OK-2"]
    rejects = read_rejects(tmp_path / "cases.rej.csv")
    assert [int(r["line"]) for r in rejects] == list(range(3, 3 + len(HIDDEN)))  # header is line 1, OK-1 line 2
    for r, (ch, name) in zip(rejects, HIDDEN.items()):
        assert (r["field"], r["reason"]) == ("external_id", "invalid_value")
        assert f"U+{ord(ch):04X} {name}" in r["message"] and r["message"].startswith("external_id "), r
        assert "invisible or text-direction" in r["message"]


@pytest.mark.parametrize("ch", ["\u200b", "\u202e", "\u2066"])
def test_reference_ids_are_checked_too(reference_engine, tmp_path, ch):
    """A facility's id, and an occupancy row's reference to a facility (an id field too)."""
    path = write_csv(tmp_path / "facilities.csv", ["external_id", "name", "district", "capacity", "kind"],
                     [[f"P{ch}1", "停车场", "410105", "100", "off_street"], ["P2", "停车场", "410105", "100", "off_street"]])
    result = run(reference_engine, path, kind="facilities", now=T0)
    assert (result.inserted, result.rejected) == (1, 1)
    with reference_engine.connect() as conn:
        assert list(conn.execute(select(ParkingFacility.external_id)).scalars()) == ["P2"]
    (reject,) = read_rejects(tmp_path / "facilities.rej.csv")
    assert (reject["line"], reject["field"]) == ("2", "external_id")
    path = write_csv(tmp_path / "occupancy.csv", ["facility", "observed_at", "occupied"],
                     [[f"P2{ch}", "2026-11-26 09:00", "5"]])
    result = run(reference_engine, path, kind="occupancy", now=T0)
    (reject,) = read_rejects(tmp_path / "occupancy.rej.csv")
    assert (reject["field"], reject["reason"]) == ("facility", "invalid_value")
    assert f"U+{ord(ch):04X}" in reject["message"]
