"""Turn a landing file's bytes into CSV records, whatever the file turns out to be.

Readable: UTF-8 (with or without a BOM), UTF-16 and UTF-32 with a BOM, gzip-compressed CSV (recognised
by its magic bytes, so `sales_q1.csv.gz` just works), and `\\n`, `\\r\\n` or bare `\\r` line endings. Any
other file (binary, UTF-16 without a BOM, a gzip that does not decompress) cannot be read at all and is
quarantined whole as `unreadable_file`. Bytes that are not UTF-8 inside an otherwise readable file only
cost their own rows.

Records are read with the csv module over physical lines, so a quoted field may span lines; but a record
that spans lines and still has the wrong number of fields is an unterminated quote: only its first line
is rejected and reading resumes on the next line, so one stray quote never swallows the rows after it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import itertools
import operator
import re
import zlib
from collections.abc import Iterator

GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (  # UTF-32 LE first: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF_CHARS = 8192
_BINARY_SHARE = 0.1  # a file whose first 8 KiB hold more than this share of non-text characters is binary
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\udc80-\udcff]")
_UNTERMINATED = "unterminated quote (the record ran over later lines)"
UNSTORABLE = re.compile("[\x00\udc80-\udcff]")  # NUL (PostgreSQL rejects it) and bytes that are not UTF-8


class UnreadableFile(ValueError):
    """The file is not a text CSV in a supported encoding; `str(error)` says why."""


def decode(data: bytes) -> str:
    """The file's text; undecodable UTF-8 bytes are kept as surrogates so their rows can be quarantined."""
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableFile(f"gzip file that does not decompress ({error})") from None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as error:
                raise UnreadableFile(f"{encoding} byte-order mark but invalid {encoding} ({error.reason})") from None
    text = data.decode("utf-8", "surrogateescape")
    sample = text[:_SNIFF_CHARS]
    if sample and len(_NOT_TEXT.findall(sample)) > _BINARY_SHARE * len(sample):
        raise UnreadableFile(
            "binary content, not a text CSV (supported: UTF-8, UTF-16/32 with a BOM, gzip-compressed CSV)"
        )
    return text


def split_lines(text: str) -> list[str]:
    """Physical lines; only \\n, \\r\\n and \\r end a line (never U+2028, form feed or other separators)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def printable(text: str) -> str:
    """Undecodable bytes and NUL shown as \\xNN, so any record can be stored as text on both targets."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


Record = tuple[int, int, list[str] | None, str]
"""One CSV record: its first and last physical line (1-based), its fields or None, and why it has none.
A plain tuple: millions are made per file, and a dataclass costs a tenth of the whole load."""


def header_fields(lines: list[str]) -> list[str]:
    return [column.strip() for column in next(csv.reader(lines[:1]), [])]


def read_records(lines: list[str], n_fields: int) -> Iterator[Record]:
    """Every record after the header line; together their line ranges cover every line exactly once."""
    position = 1  # index of the next unread line; line 1 (index 0) is the header
    while position < len(lines):
        start = position
        reader = csv.reader(map(operator.add, itertools.islice(lines, start, None), itertools.repeat("\n")))
        try:
            for fields in reader:
                end = start + reader.line_num
                if end - position > 1 and len(fields) != n_fields:
                    yield position + 1, position + 1, None, _UNTERMINATED
                    position += 1
                    break
                yield position + 1, end, fields, ""
                position = end
            else:
                return
        except csv.Error as error:
            yield position + 1, position + 1, None, f"unreadable CSV record ({error})"
            position += 1
