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
NEGATIVE_OCCUPANCY = "negative_occupancy"
OVER_CAPACITY = "over_capacity"
MALFORMED_ROW = "malformed_row"
STORE_ERROR = "store_error"

REASONS = (MISSING_ID, MISSING_VALUE, UNPARSEABLE_TIME, INVALID_NUMBER, INVALID_VALUE,
           UNKNOWN_DISTRICT, UNKNOWN_CATEGORY, UNKNOWN_STREET, UNKNOWN_GRID, UNKNOWN_FACILITY,
           UNKNOWN_ENTERPRISE, UNKNOWN_VISIT, TIME_BEFORE_REPORTED, NEGATIVE_OCCUPANCY, OVER_CAPACITY,
           MALFORMED_ROW, STORE_ERROR)


class RowReject(Exception):
    """One row cannot be stored: which field, which reason code, and a human message."""

    def __init__(self, field: str, reason: str, message: str):
        super().__init__(message)
        self.field = field
        self.reason = reason
        self.message = message
