"""CSV that opens safely anywhere: UTF-8, RFC 4180 quoting, no spreadsheet formulas, streamed."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Neutralise formula injection by prefixing a quote; numbers are left as numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Line:
    """A write-only file that hands back what was written: csv.writer, one row at a time."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    writer = csv.writer(_Line(), lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        yield writer.writerow([safe_cell(v) for v in row])
