"""Tolerant parsers for single cell values: times, dates, numbers, booleans.

Every parser takes a non-empty, stripped string and returns a Python value or raises
ValueError with a message fit for the rejects file. Cities export times and numbers
in many shapes; these accept the common ones and refuse everything ambiguous.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
# Times outside this window are typos or garbage in this domain, not real events.
MIN_YEAR, MAX_YEAR = 1970, 2100

NULL_VALUES = frozenset({"", "null", "none", "nan", "nat", "n/a", "na", "-", "--", "—", "/"})

TRUE_VALUES = frozenset({"1", "true", "t", "yes", "y", "on", "是", "有", "√", "✓", "真"})
FALSE_VALUES = frozenset({"0", "false", "f", "no", "n", "off", "否", "无", "×", "✗", "假"})

# Chinese date words to separators: 2026年11月26日 9时05分 -> 2026-11-26 9:05
_ZH_TIME = str.maketrans({"年": "-", "月": "-", "日": " ", "号": " ", "时": ":", "点": ":",
                          "分": ":", "秒": " ", "／": "/", "：": ":", "－": "-"})
_GENERAL = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[T\s]+(\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,9}))?)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?$", re.IGNORECASE)
_COMPACT = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_NUMBER_NOISE = re.compile(r"[,，\s_\u00a0\u3000']")


def _offset(text: str) -> dt.tzinfo:
    if text.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = (int(digits), 0) if len(digits) <= 2 else (int(digits[:-2]), int(digits[-2:]))
    if hours > 14 or minutes > 59:
        raise ValueError(f"bad UTC offset {text!r}")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


class TimeParser:
    """Text to an aware datetime; naive times are taken in `zone`.

    Tried in order: the mapping's own `time_formats` (strptime), digit-only shapes
    (YYYYMMDD[HHMM[SS]], epoch seconds with 10 digits, epoch milliseconds with 13),
    ISO 8601, then a lenient `Y-M-D h:m:s` with / . or 年月日 separators and an
    optional zone suffix.
    """

    def __init__(self, zone: ZoneInfo, formats: tuple[str, ...] = ()):
        self.zone = zone
        self.formats = formats

    def __call__(self, raw: str) -> dt.datetime:
        value = self._parse(raw.strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        # years are checked in UTC so that the store (UTC) never sees year 0 or 10000
        if not MIN_YEAR <= value.astimezone(UTC).year <= MAX_YEAR:
            raise ValueError(f"{raw!r} is outside {MIN_YEAR}-{MAX_YEAR}")
        return value

    def _parse(self, s: str) -> dt.datetime:
        for fmt in self.formats:
            try:
                return dt.datetime.strptime(s, fmt)
            except ValueError:
                pass
        whole, _, frac = s.partition(".")
        if whole.isascii() and whole.isdigit() and (not frac or (frac.isascii() and frac.isdigit())):
            return self._digits(s, whole, frac)
        try:
            return dt.datetime.fromisoformat(s)
        except ValueError:
            pass
        m = _GENERAL.match(" ".join(s.translate(_ZH_TIME).split()).rstrip(":"))
        if not m:
            raise ValueError(f"{s!r} is not a time")
        y, mo, d, h, mi, sec, fr, zone = m.groups()
        try:
            out = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0),
                              int((fr or "0")[:6].ljust(6, "0")))
            return out.replace(tzinfo=_offset(zone)) if zone else out
        except ValueError as exc:
            raise ValueError(f"{s!r} is not a time: {exc}") from None

    @staticmethod
    def _digits(s: str, whole: str, frac: str) -> dt.datetime:
        fmt = _COMPACT.get(len(whole))
        if fmt and not frac:
            try:
                return dt.datetime.strptime(whole, fmt)
            except ValueError:
                raise ValueError(f"{s!r} is not a time") from None
        if len(whole) in (10, 13):  # epoch seconds / milliseconds: always UTC
            seconds = float(s) / (1000 if len(whole) == 13 else 1)
            return dt.datetime.fromtimestamp(seconds, UTC)
        raise ValueError(f"{s!r} is not a time (digits only: expected YYYYMMDD, YYYYMMDDHHMM, "
                         "YYYYMMDDHHMMSS, or epoch seconds / milliseconds)")


def parse_date(parse_time: TimeParser, raw: str) -> dt.date:
    """A calendar date in the parser's zone (a time of day, if given, is dropped)."""
    return parse_time(raw).astimezone(parse_time.zone).date()


def parse_float(raw: str) -> float:
    cleaned = _NUMBER_NOISE.sub("", raw)
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def parse_int(raw: str) -> int:
    cleaned = _NUMBER_NOISE.sub("", raw)
    try:
        return int(cleaned)
    except ValueError:
        pass
    value = parse_float(raw)  # "12.0" is a whole number, "12.5" is not
    if not value.is_integer() or abs(value) > 2 ** 53:
        raise ValueError(f"{raw!r} is not a whole number")
    return int(value)


def parse_bool(raw: str) -> bool:
    v = raw.strip().lower()
    if v in TRUE_VALUES:
        return True
    if v in FALSE_VALUES:
        return False
    raise ValueError(f"{raw!r} is not yes/no (use 是/否, Y/N, true/false or 1/0)")
