"""`python -m dashboard import` through dashboard.cli.main: exit codes, and the worked
examples of docs/import.md, run exactly as the doc shows them."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from sqlalchemy import func, select

import dashboard.cli as cli
from datasource.schema import Case, Enterprise, EnterpriseVisit, OccupancyReading, ParkingFacility

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "import.md"


@pytest.fixture
def store(reference_engine, monkeypatch):
    """DATABASE_URL pointing at the test store, run from the repo root (the doc's paths)."""
    monkeypatch.setenv("DATABASE_URL", reference_engine.url.render_as_string(hide_password=False))
    monkeypatch.chdir(ROOT)
    return reference_engine


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_exit_0_when_clean_1_with_rejects_2_when_fatal(store, tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text("id,source,category,district,reported_at\nG1,app,S05-01,金水,2026-11-26 09:05\n",
                    encoding="utf-8")
    assert cli.main(["import", str(good), "--kind", "cases"]) == 0
    out = capsys.readouterr().out
    assert "1 inserted" in out and "no rows rejected" in out

    mixed = tmp_path / "mixed.csv"
    mixed.write_text("id,source,category,district,reported_at\nG2,app,S05-01,金水,2026-11-26 09:05\n"
                     "G3,app,S05-01,Atlantis,2026-11-26 09:05\n", encoding="utf-8")
    assert cli.main(["import", str(mixed), "--kind", "cases"]) == 1
    out = capsys.readouterr().out
    assert "rejected by reason: unknown_district 1" in out
    assert f"rejected rows are in {tmp_path / 'mixed.rejects.csv'}" in out  # default: beside the input
    assert (tmp_path / "mixed.rejects.csv").is_file()
    assert count(store, Case) == 2

    for argv, message in [
        (["import", str(tmp_path / "nope.csv"), "--kind", "cases"], "nope.csv: no such file"),
        (["import", str(good), "--kind", "parcels"], "unknown kind 'parcels'"),
        (["import", str(good), "--kind", "cases", "--format", "xml"], "unknown format 'xml'"),
        (["import", str(good), "--kind", "cases", "--mapping", str(tmp_path / "m.yaml")], "`columns.nonsense`"),
    ]:
        (tmp_path / "m.yaml").write_text("columns: {nonsense: x}\n", encoding="utf-8")
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("import failed: ") and message in err
    assert count(store, Case) == 2


def _doc_examples() -> list[tuple[list[str], list[str]]]:
    """Each ```console block of docs/import.md: the command's arguments and its output."""
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    examples = []
    for block in blocks:
        lines = block.strip("\n").splitlines()
        assert lines[0].startswith("$ python -m dashboard import "), lines[0]
        examples.append((shlex.split(lines[0])[4:], lines[1:]))  # after "$ python -m dashboard"
    return examples


def test_the_docs_worked_examples_are_true(store, tmp_path, capsys):
    examples = _doc_examples()
    commands = [" ".join(argv) for argv, _ in examples]
    # the worked example the doc is built around
    assert ("import docs/examples/cases_export_gbk.csv --kind cases "
            "--mapping docs/examples/cases_export_mapping.yaml") in commands
    for argv, expected in examples:
        code = cli.main(argv + ["--rejects", str(tmp_path / "rejects.csv")])
        out = capsys.readouterr().out.splitlines()
        assert out == expected, " ".join(argv)
        assert code == 0
    assert count(store, ParkingFacility) == 4 and count(store, OccupancyReading) == 6
    assert count(store, Enterprise) == 2 and count(store, EnterpriseVisit) == 3
    assert count(store, Case) == 10
    with store.connect() as conn:
        got = dict(conn.execute(select(Case.external_id, Case.status)).all())
    assert got["SZCG-20261126-0002"] == "dispatched" and got["SZCG-20261125-0108"] == "voided"
    # every example file is used by the doc
    used = {Path(a).name for argv, _ in examples for a in argv if a.startswith("docs/examples/")}
    assert used == {p.name for p in (ROOT / "docs" / "examples").iterdir()}


def test_the_doc_lists_every_field_mapping_key_and_reason():
    from datasource.importer.errors import REASONS
    from datasource.importer.kinds import KINDS, fields_markdown
    from datasource.importer.mapping import TOP_KEYS

    doc = DOC.read_text(encoding="utf-8")
    for kind in KINDS:
        section = doc.split(f"#### {kind}\n", 1)[1]
        table = "\n".join(fields_markdown(kind))
        assert section.lstrip().startswith(table), f"docs/import.md: the {kind} table is out of date"
    for key in TOP_KEYS:
        assert f"| `{key}` |" in doc, key
    for reason in REASONS:
        assert f"| `{reason}` |" in doc, reason
