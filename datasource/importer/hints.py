"""What to change in the mapping when rows are rejected: the key that fixes a problem,
for one row (added to its message in the rejects file) and for a whole file when most
of its rows fail for one reason (a line of the summary).

A problem names its field; the row parser says which column fed that field and how
the column was chosen (named under `columns:`, or found by the field's own name or one
of its aliases). An alias that picked the wrong column is the usual cause of a file
where nearly every row fails the same way, so the summary says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from datasource.importer import errors as E

# how a field's column was chosen (RowParser.source)
BY_MAPPING, BY_NAME, BY_ALIAS, BY_DEFAULT = "mapping", "name", "alias", "default"

_UNKNOWN = (E.UNKNOWN_DISTRICT, E.UNKNOWN_CATEGORY, E.UNKNOWN_STREET, E.UNKNOWN_GRID)
# m/d/y or d/m/y, with an optional time of day and AM/PM: the usual shapes of US and
# European exports that the built-in shapes (year first) do not read
_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})"
                  r"(?:([ T]+)(\d{1,2}):(\d{2})(:\d{2})?(\.\d+)?(\s*[AaPp]\.?[Mm]\.?)?)?$")


@dataclass(frozen=True)
class Source:
    """Where a field's value came from in a file."""
    column: str | None
    how: str  # BY_MAPPING, BY_NAME, BY_ALIAS or BY_DEFAULT

    @property
    def shown(self) -> str:
        """The column's name as printed: a header is the city's data, so anything a
        terminal or a log would interpret (escapes, line breaks) is shown quoted."""
        col = self.column or ""
        return col if col.isprintable() else repr(col)

    def words(self, field: str) -> str:
        if self.how == BY_ALIAS:
            return f"column `{self.shown}` was taken for `{field}` by its alias"
        if self.how == BY_NAME:
            return f"column `{self.shown}` was taken for `{field}` by its name"
        if self.how == BY_MAPPING:
            return f"column `{self.shown}` is read for `{field}` (columns.{field}:)"
        return f"`{field}` comes from defaults.{field}:"


def time_format(text: str) -> tuple[str, bool] | None:
    """A strptime format that reads `text`, for the common shapes the built-in parser does
    not read (month or day first), and whether day-first would read it too; None when
    there is no safe guess."""
    m = _DMY.match(text.strip())
    if not m:
        return None
    a, sep, b, year, space, hour, _minute, seconds, fraction, ampm = m.groups()
    day_first = int(a) > 12
    fmt = ("%d{0}%m{0}" if day_first else "%m{0}%d{0}").format(sep) + ("%Y" if len(year) == 4 else "%y")
    if hour is not None:
        fmt += ("T" if "T" in space else " ") + ("%I" if ampm else "%H") + ":%M"
        fmt += (":%S" if seconds else "") + (".%f" if fraction else "")
        if ampm:
            fmt += (" %p" if ampm[0].isspace() else "%p") if "." not in ampm else ""
    if ampm and "." in ampm:
        return None  # a.m. / p.m.: strptime has no directive for it
    return fmt, int(a) <= 12 and int(b) <= 12


def time_hint(text: str) -> str:
    guess = time_format(text)
    if guess is None:
        return "add its format to time_formats:"
    fmt, either = guess
    hint = f'add its format to time_formats:, e.g. "{fmt}"'
    if either:
        day_first = fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")
        hint += f' (or "{day_first}" if the day comes first)'
    return hint


def row_hint(field: str, reason: str, source: Source | None) -> str:
    """The usual fix of one row's problem, when the code that found it gave none."""
    f = field
    if reason in _UNKNOWN:
        if source is not None and source.how == BY_MAPPING:
            return (f"map the value under values.{f}:, or check that columns.{f}: "
                    f"(now `{source.shown}`) is the right column")
        where = f"; {source.words(f)}" if source is not None and source.how == BY_ALIAS else ""
        return f"map the value under values.{f}:, or set columns.{f}: to the right column{where}"
    if reason == E.MISSING_ID:
        return "name the id column under columns.external_id:"
    if reason == E.MISSING_VALUE and f:
        return f"name its column under columns.{f}:, or give defaults.{f}:"
    if reason == E.UNPARSEABLE_TIME:
        return "add its format to time_formats:"
    if reason == E.INVALID_NUMBER:
        return f"map it under values.{f}:, or list it in null_values: if it means empty"
    if reason == E.INVALID_VALUE and f:
        return f"map it under values.{f}:"
    if reason == E.TIME_BEFORE_REPORTED:
        return f"check that columns.{f}: and columns.reported_at: read the right columns"
    if reason == E.TOO_LONG:
        return f"shorten it in the export, or set columns.{f}: [] to leave the field out"
    return ""


def message(problem: E.RowReject, source: Source | None) -> str:
    """A problem's message with the mapping key that fixes it."""
    hint = problem.hint or row_hint(problem.field, problem.reason, source)
    return f"{problem.message} ({hint})" if hint else problem.message


def file_hint(field: str, reason: str, source: Source | None, example: str) -> str:
    """What to change when most rows of a file fail with (field, reason)."""
    f = field
    by_alias = source is not None and source.how == BY_ALIAS and f
    if by_alias and reason in (*_UNKNOWN, E.INVALID_VALUE, E.INVALID_NUMBER):
        return (f"{source.words(f)}; set columns.{f}: to the right column "
                f"or [] to read none")
    if reason == E.UNPARSEABLE_TIME:
        hint = time_hint(example) if example else "add the export's time format to time_formats:"
        return hint + (f"; or, if it is the wrong column ({source.words(f)}), set columns.{f}:" if by_alias else "")
    if reason in _UNKNOWN:
        where = f"{source.words(f)}; " if source and source.column else ""
        return (f"{where}map the file's values under values.{f}:, or load them into the "
                "reference data first")
    if reason == E.MISSING_VALUE and f:
        return f"name the column under columns.{f}:, or give defaults.{f}:"
    if reason == E.MALFORMED_ROW:
        return "check delimiter: and header_line: in the mapping, and that the export is complete"
    return row_hint(f, reason, source)


def reason_words(reason: str) -> str:
    return reason.replace("_", " ")


def dominant_lines(read: int, rejected: int, problems, examples: dict, sources: dict) -> list[str]:
    """Summary lines for a file most of whose rows fail for one reason: how many, why, and
    the mapping key to change, with the first such row as an example."""
    if not problems or not read:
        return []
    (field, reason), n = max(problems.items(), key=lambda kv: (kv[1], kv[0]))
    if n * 2 <= read:
        return []
    line, text, cell, own = examples.get((field, reason), (None, "", "", ""))
    what = reason_words(reason) + (f" ({field})" if field and field not in reason else "")
    fix = file_hint(field, reason, sources.get(field), cell) or own
    out = [f"  {n:,} of {read:,} rows rejected: {what}" + (f" — {fix}" if fix else "")]
    if line is not None:
        out.append(f"  for example line {line}: {text}")
    return out
