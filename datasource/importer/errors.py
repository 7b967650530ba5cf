"""The two ways an import can fail: the whole file (fatal) or one row (rejected)."""
from __future__ import annotations


class ImportError_(Exception):  # noqa: N801 - trailing underscore: not the builtin ImportError
    """A fatal problem: unreadable file, invalid mapping, unknown kind or format.

    The message names the file or the mapping key so that the integrator can fix it.
    Nothing of the file that raised it has been written when it is raised.
    """


# Reject reasons, the codes written to the rejects file. docs/import.md lists them.
MISSING_ID = "missing_id"
MISSING_VALUE = "missing_value"
UNPARSEABLE_TIME = "unparseable_time"
INVALID_NUMBER = "invalid_number"
INVALID_VALUE = "invalid_value"
UNKNOWN_DISTRICT = "unknown_district"
UNKNOWN_CATEGORY = "unknown_category"
UNKNOWN_STREET = "unknown_street"
UNKNOWN_GRID = "unknown_grid"
UNKNOWN_FACILITY = "unknown_facility"
UNKNOWN_ENTERPRISE = "unknown_enterprise"
UNKNOWN_VISIT = "unknown_visit"
TIME_BEFORE_REPORTED = "time_before_reported"
TOO_LONG = "too_long"
MALFORMED_ROW = "malformed_row"
STORE_ERROR = "store_error"

REASONS = (MISSING_ID, MISSING_VALUE, UNPARSEABLE_TIME, INVALID_NUMBER, INVALID_VALUE,
           UNKNOWN_DISTRICT, UNKNOWN_CATEGORY, UNKNOWN_STREET, UNKNOWN_GRID, UNKNOWN_FACILITY,
           UNKNOWN_ENTERPRISE, UNKNOWN_VISIT, TIME_BEFORE_REPORTED, TOO_LONG, MALFORMED_ROW, STORE_ERROR)


class RowReject(Exception):
    """One row cannot be stored: which field, which reason code, a human message, and
    (optionally) the mapping key that fixes it. `hint` is added to the message in the
    rejects file; when it is empty, datasource/importer/hints.py gives the usual one for
    the reason. A row with several problems raises the first, the others in `others`."""

    def __init__(self, field: str, reason: str, message: str, hint: str = ""):
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.message = message
        self.hint = hint
        self.others: list[RowReject] = []

    @property
    def problems(self) -> list["RowReject"]:
        return [self, *self.others]

    @staticmethod
    def of(problems: list["RowReject"]) -> "RowReject":
        """One exception carrying every problem of a row, in the order found."""
        flat = [q for p in problems for q in p.problems]
        first = flat[0]
        first.others = flat[1:]
        return first


class CellError(ValueError):
    """A cell a field cannot take, with its own reason code (default: the field type's)
    and the mapping key that fixes it. A ValueError, so that mapping checks that convert
    a value catch it like any other."""

    def __init__(self, message: str, reason: str | None = None, hint: str = ""):
        super().__init__(message)
        self.reason = reason
        self.hint = hint
