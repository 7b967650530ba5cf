"""Tables to files: CSV (UTF-8 with a BOM, so that Excel reads the Chinese headers) and XLSX.

A table is a list of header strings and rows of plain values (str, int, float, None);
numbers stay numbers in both formats, None is an empty cell.

Text comes from a city's data and is hostile: a spreadsheet takes a cell starting with
"=", "+", "-" or "@" (or a tab or carriage return before one) for a formula, which can
fetch URLs or run commands when the file is opened (CSV/formula injection). Every text
cell starting with one of those characters is prefixed with a single quote (OWASP's
advice), and the XLSX stores every text cell as a string, never as a formula.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

# OWASP's list, LF too, and the full-width forms a Chinese spreadsheet may also take for
# a formula's start
FORMULA_STARTS = tuple("=+-@\t\r\n") + ("\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_text(value):
    """`value` with a quote in front when it is text a spreadsheet would read as a formula;
    anything else (numbers included, negative ones too) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([safe_text(h) for h in headers])
    for r in rows:
        w.writerow(["" if v is None else safe_text(v) for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence], title: str = "Sheet1") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(title))
    bold = Font(bold=True)
    head = []
    for h in headers:
        c = _cell(ws, h)
        c.font = bold
        head.append(c)
    ws.append(head)
    for r in rows:
        ws.append([_cell(ws, v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell(ws, value):
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if not isinstance(value, str):
        return WriteOnlyCell(ws, value=value)
    # control characters XML cannot hold would make openpyxl refuse the whole file
    c = WriteOnlyCell(ws, value=safe_text(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)))
    c.data_type = "s"  # openpyxl makes any text starting with "=" a formula
    return c


def _sheet_title(title: str) -> str:
    for ch in '[]:*?/\\':
        title = title.replace(ch, " ")
    return title[:31] or "Sheet1"
