"""A contacts CSV, fed in chunks as it is uploaded, turned into contacts and line errors (pure).

The file is never held whole: ``CsvFeed`` decodes each chunk (UTF-8, with or without a
BOM, or Windows-1251 — what Russian Excel saves — chosen on the first 64 KiB), cuts it
into records and keeps only the unfinished tail. A record ends at a newline outside
quotes; since CSV escapes a quote by doubling it, that is a newline after an even number
of quotes. The delimiter (``;`` from Russian Excel, ``,`` or tab) is taken from the
header line. ``ContactsCsv`` maps the header and parses each record, reporting a bad row
by its first line number and the field at fault, and goes on with the next row.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass, field

from admin.core.contacts import Contact, InvalidContact, map_columns, parse_contact, row_record

MAX_RECORD = 1 << 20  # an unterminated quote must not swallow the whole file into memory
DELIMITERS = (";", ",", "\t")
SNIFF = 1 << 16


class CsvError(ValueError):
    """The file as a whole cannot be read (encoding, no header, runaway quote)."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    cells: list[str]


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str


class CsvFeed:
    def __init__(self) -> None:
        self._decoder: codecs.IncrementalDecoder | None = None
        self._head = b""
        self._tail = ""
        self._lines: list[str] = []
        self._quotes = 0
        self._line = 0
        self._start = 1
        self.delimiter: str | None = None

    def feed(self, chunk: bytes, final: bool = False) -> list[Record]:
        text = self._decode(chunk, final)
        pieces = (self._tail + text).split("\n")
        self._tail = "" if final else pieces.pop()
        if len(self._tail) > MAX_RECORD:
            raise CsvError(f"line {self._line + 1} is longer than {MAX_RECORD} characters")
        return [r for r in map(self._line_in, pieces) if r is not None]

    def check_ended(self) -> None:
        """After the final feed: the file must not end inside a quote."""
        if self._lines:
            raise CsvError(f"the quote opened on line {self._start} is never closed")

    def _decode(self, chunk: bytes, final: bool) -> str:
        if self._decoder is None:  # the encoding is chosen on the first SNIFF bytes
            self._head += chunk
            if len(self._head) < SNIFF and not final:
                return ""
            self._decoder, chunk, self._head = _decoder_for(self._head), self._head, b""
        try:
            return self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            raise CsvError(f"not UTF-8 text after line {self._line}") from None

    def _line_in(self, line: str) -> Record | None:
        self._line += 1
        if not self._lines:
            self._start = self._line
        self._lines.append(line)
        self._quotes += line.count('"')
        if self._quotes % 2:
            if sum(map(len, self._lines)) > MAX_RECORD:
                raise CsvError(f"the quote opened on line {self._start} is never closed")
            return None
        text = "\n".join(self._lines).removesuffix("\r")  # a CR inside quotes is data
        self._lines, self._quotes = [], 0
        if not text.strip():
            return None
        return Record(self._start, self._cells(text))

    def _cells(self, text: str) -> list[str]:
        if self.delimiter is None:
            self.delimiter = max(DELIMITERS, key=text.count)
        try:
            return next(csv.reader((text,), delimiter=self.delimiter))
        except csv.Error as exc:
            return ["\x00csv", str(exc)]  # turned into a row error by ContactsCsv


def _decoder_for(first: bytes) -> codecs.IncrementalDecoder:
    if first.startswith(codecs.BOM_UTF8):
        return codecs.getincrementaldecoder("utf-8-sig")()
    try:
        codecs.getincrementaldecoder("utf-8")().decode(first, False)
    except UnicodeDecodeError:
        return codecs.getincrementaldecoder("cp1251")()
    return codecs.getincrementaldecoder("utf-8")()


@dataclass
class ContactsCsv:
    """Feed chunks in; take ``contacts`` and ``errors`` out after each feed."""

    default_region: str = "RU"
    columns: tuple[str, ...] | None = None
    rows: int = 0
    contacts: list[tuple[int, Contact]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    _feed: CsvFeed = field(default_factory=CsvFeed)

    def feed(self, chunk: bytes, final: bool = False) -> None:
        for record in self._feed.feed(chunk, final):
            self._record(record)
        if final:
            self._feed.check_ended()
        if final and self.columns is None:
            raise CsvError("the file is empty: a header line with a phone column is needed")

    def take(self) -> tuple[list[tuple[int, Contact]], list[RowError]]:
        taken = self.contacts, self.errors
        self.contacts, self.errors = [], []
        return taken

    def _record(self, record: Record) -> None:
        if self.columns is None:
            self._header(record)
            return
        self.rows += 1
        if record.cells[:1] == ["\x00csv"]:
            self.errors.append(RowError(record.line, "row", record.cells[1]))
            return
        try:
            contact = parse_contact(row_record(self.columns, record.cells), self.default_region)
        except InvalidContact as exc:
            self.errors.append(RowError(record.line, exc.field, exc.message))
            return
        self.contacts.append((record.line, contact))

    def _header(self, record: Record) -> None:
        try:
            self.columns = map_columns(record.cells)
        except InvalidContact as exc:
            raise CsvError(f"header (line {record.line}): {exc.message}") from None
