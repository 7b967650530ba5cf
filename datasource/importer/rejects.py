"""The rejects file: one CSV line per rejected row, for a person to fix and re-import.

UTF-8 with a BOM so that Excel opens Chinese text correctly. Columns: file, line (where
the record starts in its file; a CSV header is line 1), field, reason (a code from
docs/import.md), message, raw (the row's original text). A row with several problems
is one line: its fields and reasons joined with SEPARATOR, its messages one per line of
the cell (MESSAGE_SEPARATOR; a message never holds a newline: values are quoted with
repr), all in the same order.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from datasource.importer.errors import ImportError_

COLUMNS = ("file", "line", "field", "reason", "message", "raw")
SEPARATOR = "; "
MESSAGE_SEPARATOR = "\n"


def default_path(first_input: Path) -> Path:
    """cases.csv -> cases.rejects.csv, beside the input."""
    return first_input.with_name(f"{first_input.stem}.rejects.csv")


class RejectsWriter:
    """Opened on the first reject. A run without rejects removes a rejects file left at
    the same path by an earlier run, so that it cannot be mistaken for this run's."""

    def __init__(self, path: Path):
        self.path = path
        self.reasons: Counter = Counter()  # rejected rows with a problem of each reason
        self.rows = 0
        self._fh = None
        self._writer = None

    @property
    def count(self) -> int:
        return self.rows

    def write(self, file: str, line: int, field: str, reason: str, message: str, raw: str) -> None:
        self.write_problems(file, line, [(field, reason, message)], raw)

    def write_problems(self, file: str, line: int, problems: list[tuple[str, str, str]], raw: str) -> None:
        """One rejected row and every problem found in it: (field, reason, message)."""
        if self._writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("w", encoding="utf-8-sig", newline="")
            except OSError as exc:
                raise ImportError_(f"cannot write the rejects file {self.path}: {exc}") from None
            self._writer = csv.writer(self._fh)
            self._writer.writerow(COLUMNS)
        fields, reasons, messages = zip(*problems)
        self._writer.writerow((file, line, SEPARATOR.join(fields), SEPARATOR.join(reasons),
                               MESSAGE_SEPARATOR.join(messages), raw))
        self.reasons.update(set(reasons))
        self.rows += 1

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        elif self.path.is_file():
            self.path.unlink()


def read_rejects(path: Path) -> list[dict[str, str]]:
    """The rejects file back as rows (for tests and tools)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
