"""Tables to files: CSV (UTF-8 with a BOM, so that Excel reads the Chinese headers) and XLSX.

A table is a list of header strings and rows of plain values (str, int, float, None);
numbers stay numbers in both formats, None is an empty cell.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence


def to_csv(headers: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence], title: str = "Sheet1") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(title))
    bold = Font(bold=True)
    head = []
    for h in headers:
        c = WriteOnlyCell(ws, value=h)
        c.font = bold
        head.append(c)
    ws.append(head)
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_title(title: str) -> str:
    for ch in '[]:*?/\\':
        title = title.replace(ch, " ")
    return title[:31] or "Sheet1"
