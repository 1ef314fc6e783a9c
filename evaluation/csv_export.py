"""CSV that opens safely anywhere: UTF-8, RFC 4180 quoting, no spreadsheet formulas, streamed."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets (OWASP's list,
# with the full-width forms that some locales of Excel also take as the start of a formula).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Control characters (C0, DEL, C1): tab and carriage return start formulas in some programs, the
# others can hide what follows them; a cell that starts with any of them is quoted too.
CONTROL_CHARACTERS = frozenset(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)])


def safe_cell(value: Any) -> Any:
    """Neutralise formula injection by prefixing a quote; numbers are left as numbers."""
    if value is None:
        return ""
    if (
        isinstance(value, str)
        and value
        and (value.startswith(FORMULA_PREFIXES) or value[0] in CONTROL_CHARACTERS)
    ):
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


def csv_dict_lines(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Rows as named columns: a value under a name the header does not have is an error, not a shift."""
    writer = csv.DictWriter(
        _Line(), fieldnames=list(columns), lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL, restval=""
    )
    yield writer.writeheader()  # _Line.write returns the line, and writeheader returns what it wrote
    for row in rows:
        yield writer.writerow({k: safe_cell(v) for k, v in row.items()})
