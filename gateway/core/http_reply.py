"""Framing an HTTP/1.x response from bytes as they arrive: its status, whether the
connection may carry another request, and where the response ends.

The body is counted and dropped: a status callback needs the receiver's status, not what
it wrote. Framing follows RFC 9112 §6.3: no body for 1xx (skipped: an interim answer),
204 and 304; chunked transfer coding; Content-Length; otherwise the body runs until the
connection closes. A body over ``max_body`` bytes ends reading early and the connection
is not reused (the status is known by then).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024


class BadResponse(ValueError):
    """The peer's bytes are not an HTTP/1.x response."""


class _Phase(Enum):
    HEAD = "head"
    LENGTH = "length"  # Content-Length bytes left
    CHUNK_SIZE = "chunk size"
    CHUNK_DATA = "chunk data"
    CHUNK_END = "chunk end"  # the CRLF after a chunk's data
    TRAILERS = "trailers"
    UNTIL_CLOSE = "until close"
    DONE = "done"


@dataclass
class ReplyReader:
    """Feed it the bytes read; ``feed`` answers True once the response is complete."""

    max_body: int = MAX_BODY
    status: int = 0
    reusable: bool = False
    _phase: _Phase = _Phase.HEAD
    _buffer: bytes = b""
    _left: int = 0  # bytes of the body (or of the current chunk) still to come
    _body: int = 0

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    @property
    def until_close(self) -> bool:
        """The body runs until the connection closes: a close completes the response."""
        return self._phase is _Phase.UNTIL_CLOSE

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        while self._phase is not _Phase.DONE and self._step():
            pass
        return self._phase is _Phase.DONE

    def closed(self) -> bool:
        """The connection closed: True if that completed the response."""
        if self._phase is _Phase.UNTIL_CLOSE:
            self._phase = _Phase.DONE
        return self._phase is _Phase.DONE

    def _step(self) -> bool:
        """One step of framing; False when more bytes are needed."""
        match self._phase:
            case _Phase.HEAD:
                return self._head()
            case _Phase.LENGTH | _Phase.CHUNK_DATA | _Phase.UNTIL_CLOSE:
                return self._data()
            case _Phase.CHUNK_SIZE:
                return self._chunk_size()
            case _Phase.CHUNK_END:
                return self._line(lambda line: self._expect_empty(line, _Phase.CHUNK_SIZE))
            case _Phase.TRAILERS:
                return self._line(self._trailer)
        return False

    def _head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise BadResponse("response head too long")
            return False
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        lines = head.decode("latin-1").split("\r\n")
        version, status = _status_line(lines[0])
        if 100 <= status < 200:
            return True  # an interim answer: the real one follows
        fields = _fields(lines[1:])
        self.status = status
        connection = fields.get("connection", "").lower()
        self.reusable = version == "HTTP/1.1" and "close" not in connection
        self._framing(status, fields)
        return True

    def _framing(self, status: int, fields: dict[str, str]) -> None:
        if status in (204, 304):
            self._phase = _Phase.DONE
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            self._phase = _Phase.CHUNK_SIZE
        elif "content-length" in fields:
            self._left = _length(fields["content-length"])
            self._phase = _Phase.LENGTH if self._left else _Phase.DONE
        else:
            self.reusable = False
            self._phase = _Phase.UNTIL_CLOSE

    def _data(self) -> bool:
        if not self._buffer:
            return False
        take = len(self._buffer) if self._phase is _Phase.UNTIL_CLOSE else self._left
        taken = self._buffer[:take]
        self._buffer = self._buffer[len(taken) :]
        self._left -= len(taken)
        self._body += len(taken)
        if self._body > self.max_body:
            self.reusable = False  # the rest is never read: the connection cannot go on
            self._phase = _Phase.DONE
        elif self._phase is _Phase.LENGTH and self._left == 0:
            self._phase = _Phase.DONE
        elif self._phase is _Phase.CHUNK_DATA and self._left == 0:
            self._phase = _Phase.CHUNK_END
        return True

    def _line(self, take: Callable[[bytes], None]) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise BadResponse("chunk line too long")
            return False
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        take(line)
        return True

    def _chunk_size(self) -> bool:
        return self._line(self._size_line)

    def _size_line(self, line: bytes) -> None:
        size = line.split(b";", 1)[0].strip()
        try:
            self._left = int(size, 16)
        except ValueError:
            raise BadResponse(f"bad chunk size {size[:20]!r}") from None
        if self._left < 0:
            raise BadResponse("negative chunk size")
        self._phase = _Phase.CHUNK_DATA if self._left else _Phase.TRAILERS

    def _expect_empty(self, line: bytes, then: _Phase) -> None:
        if line:
            raise BadResponse("chunk data longer than its size")
        self._phase = then

    def _trailer(self, line: bytes) -> None:
        if not line:  # the empty line after the trailers ends the response
            self._phase = _Phase.DONE


def _status_line(line: str) -> tuple[str, int]:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isdigit() or len(code) != 3:
        raise BadResponse(f"not an HTTP/1.x status line: {line[:40]!r}")
    return version, int(code)


def _fields(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadResponse(f"bad header line {line[:40]!r}")
        key = name.lower()
        found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    return found


def _length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}  # repeated, they must agree
    if len(values) != 1 or not (only := values.pop()).isdigit():
        raise BadResponse(f"bad Content-Length {value[:20]!r}")
    return int(only)
