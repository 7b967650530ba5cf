"""The weekly report's workbook: one sheet per table, Chinese headers, deltas against the
previous week, numbers kept as numbers (rates as fractions formatted as percentages).
Text (district codes and names come from the store) is written as a string, never a formula,
with a quote in front when a spreadsheet would read it as one (dashboard/export.py's rule)."""
from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from layouts.weekly.labels import t

SHEETS = (("cases", "sheet_cases"), ("enterprise", "sheet_enterprise"), ("parking", "sheet_parking"))
NUMBER_FORMATS = {"count": "#,##0", "rate": "0.0%", "number": "0.0", "text": "@"}
FORMULA_STARTS = tuple("=+-@\t\r\n") + ("\uff1d", "\uff0b", "\uff0d", "\uff20")
DELTA_FORMATS = {"count": "+#,##0;-#,##0;0", "rate": "+0.0%;-0.0%;0.0%", "number": "+0.0;-0.0;0.0"}


def header(key: str, lang: str) -> str:
    """Column header: 'closed', 'closed_prev' (previous week), 'closed_delta' (change)."""
    for suffix, template in (("_prev", "col_prev"), ("_delta", "col_delta")):
        if key.endswith(suffix):
            return t(template, lang, name=t(key[: -len(suffix)], lang))
    return t(key, lang)


def build_workbook(tables: dict, *, title: str, lang: str = "zh-CN") -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="EEF3F9")
    for name, label in SHEETS:
        table = tables[name]
        ws = wb.create_sheet(t(label, lang))
        cols = table["columns"]
        ws.append([header(c["key"], lang) for c in cols])
        for cell in ws[1]:
            cell.font, cell.fill = bold, fill
            cell.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
        for row in table["rows"]:
            missing = set(row.get("not_recorded", ()))  # figures the city does not record: said, not blank
            ws.append([t("not_recorded", lang) if c["key"] in missing else
                       _text(v) if isinstance(v, str) else v for v, c in ((row.get(c["key"]), c) for c in cols)])
        for i, c in enumerate(cols, start=1):
            fmt = DELTA_FORMATS.get(c["kind"]) if c["key"].endswith("_delta") else NUMBER_FORMATS[c["kind"]]
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = fmt
            ws.column_dimensions[get_column_letter(i)].width = 14 if i > 2 else 12
        ws.freeze_panes = "C2"
        ws.row_dimensions[1].height = 32
    wb.properties.title = title
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def _text(value: str) -> str:
    """Text openpyxl stores as a string: it makes a formula only of text starting with "="."""
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value
