"""Exports as CSV or Parquet, written chunk by chunk to whatever takes the bytes.

Memory stays bounded by one chunk: CSV is encoded per chunk; Parquet is written one row
group per chunk through ``ParquetWriter`` into a sink whose bytes are handed on and
dropped after each group (the footer comes at the end). CSV starts with a UTF-8 BOM so
that spreadsheet programs read Cyrillic right, and a text cell that a spreadsheet would
take for a formula (``=``, ``+``, ``-``, ``@`` first) is prefixed with ``'``, except the
phone column, whose ``+`` is the number's own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from providers.masking import mask_phone

Row = tuple[Any, ...]
Write = Callable[[bytes], Awaitable[None]]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

_TIME = pa.timestamp("us", tz="UTC")
MESSAGE_SCHEMA = pa.schema(
    [
        ("message_id", pa.int64()), ("campaign_id", pa.int64()), ("variant", pa.string()),
        ("phone", pa.string()), ("status", pa.string()), ("parts", pa.int32()),
        ("price", pa.decimal128(14, 6)), ("provider", pa.string()), ("error_code", pa.string()),
        ("accepted_at", _TIME), ("submitted_at", _TIME), ("delivered_at", _TIME),
        ("final_at", _TIME), ("clicks", pa.int64()),
    ]
)  # fmt: skip
RESULT_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.int64()), ("campaign", pa.string()), ("state", pa.string()),
        ("variant", pa.string()), ("sent", pa.int64()), ("delivered", pa.int64()),
        ("failed", pa.int64()), ("expired", pa.int64()), ("pending", pa.int64()),
        ("delivery_rate", pa.float64()), ("cost", pa.decimal128(20, 6)),
        ("p50_seconds_to_deliver", pa.float64()), ("p95_seconds_to_deliver", pa.float64()),
        ("clicks_unique", pa.int64()), ("clicks_total", pa.int64()), ("replies", pa.int64()),
        ("opt_outs", pa.int64()), ("conversions", pa.int64()),
        ("conversion_value", pa.decimal128(20, 4)),
    ]
)  # fmt: skip


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"

    @property
    def content_type(self) -> str:
        return "text/csv; charset=utf-8" if self is Format.csv else "application/vnd.apache.parquet"


@dataclass(frozen=True, slots=True)
class Shape:
    """What an export holds: its columns (an Arrow schema) and which one is the phone."""

    schema: pa.Schema
    phone_column: int | None = None


MESSAGES = Shape(MESSAGE_SCHEMA, phone_column=3)
RESULTS = Shape(RESULT_SCHEMA)


def masked(rows: Sequence[Row], column: int) -> list[Row]:
    return [(*r[:column], r[column] and mask_phone(r[column]), *r[column + 1 :]) for r in rows]


def csv_bytes(rows: Sequence[Row], shape: Shape, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        out.write("\ufeff")
        writer.writerow(shape.schema.names)
    writer.writerows([_cell(v, i != shape.phone_column) for i, v in enumerate(r)] for r in rows)
    return out.getvalue().encode("utf-8")


def _cell(value: Any, guard: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and guard and value.startswith(_FORMULA):
        return "'" + value
    return value.isoformat() if hasattr(value, "isoformat") else value


class _Sink(io.RawIOBase):
    """A write-only file for ParquetWriter whose bytes are taken out after each group."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


async def write_export(
    chunks: AsyncIterator[Sequence[Row]], shape: Shape, fmt: Format, mask: bool, write: Write
) -> int:
    """Write every chunk in ``fmt`` through ``write``; returns the rows written."""
    if fmt is Format.csv:
        return await _write_csv(chunks, shape, mask, write)
    return await _write_parquet(chunks, shape, mask, write)


async def _write_csv(
    chunks: AsyncIterator[Sequence[Row]], shape: Shape, mask: bool, write: Write
) -> int:
    count = 0
    await write(csv_bytes([], shape, header=True))
    async for rows in chunks:
        await write(csv_bytes(_prepare(rows, shape, mask), shape, header=False))
        count += len(rows)
    return count


async def _write_parquet(
    chunks: AsyncIterator[Sequence[Row]], shape: Shape, mask: bool, write: Write
) -> int:
    count, sink = 0, _Sink()
    with pq.ParquetWriter(sink, shape.schema, compression="zstd") as writer:
        async for rows in chunks:
            writer.write_table(_table(_prepare(rows, shape, mask), shape.schema))
            count += len(rows)
            await write(sink.take())
    await write(sink.take())  # the footer
    return count


def _prepare(rows: Sequence[Row], shape: Shape, mask: bool) -> Sequence[Row]:
    return masked(rows, shape.phone_column) if mask and shape.phone_column is not None else rows


def _table(rows: Sequence[Row], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [
        pa.array(list(values), type=f.type) for values, f in zip(columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
