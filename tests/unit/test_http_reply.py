"""Framing HTTP responses for the webhook sender: whatever way the bytes are split, the
same status, the same end and the same verdict on reuse; garbage is a BadResponse."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.http_reply import BadResponse, ReplyReader


def _feed_in(pieces: list[bytes], reader: ReplyReader | None = None) -> ReplyReader:
    reader = reader or ReplyReader()
    for piece in pieces:
        if reader.feed(piece):
            break
    return reader


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks)
    return framed + b"0\r\nX-Trailer: yes\r\n\r\n"


@given(
    status=st.sampled_from([200, 201, 202, 400, 404, 500, 503]),
    body=st.binary(max_size=3000),
    framing=st.sampled_from(["length", "chunked"]),
    chunk=st.integers(1, 700),
    close=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_any_split_frames_the_same(
    status: int, body: bytes, framing: str, chunk: int, close: bool, cuts: list[int]
) -> None:
    fields = b"Connection: close\r\n" if close else b""
    if framing == "length":
        response = b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n\r\n%s" % (
            status,
            fields,
            len(body),
            body,
        )
    else:
        response = b"HTTP/1.1 %d X\r\n%sTransfer-Encoding: chunked\r\n\r\n%s" % (
            status,
            fields,
            _chunked(body, chunk),
        )
    reader = _feed_in(_split(response, cuts))
    assert reader.done and reader.status == status
    assert reader.reusable is not close


def test_interim_answers_are_skipped_and_no_body_statuses_end_at_the_head() -> None:
    reader = _feed_in([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"])
    assert reader.done and reader.status == 204 and reader.reusable


def test_a_body_without_length_runs_until_the_close() -> None:
    reader = _feed_in([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome", b" more"])
    assert not reader.done and reader.until_close and reader.status == 200
    assert reader.closed() and reader.done and not reader.reusable


def test_a_close_mid_head_completes_nothing() -> None:
    reader = _feed_in([b"HTTP/1.1 200 OK\r\nContent-Le"])
    assert not reader.closed()


def test_http_1_0_is_not_reused_and_a_huge_body_is_not_read_to_the_end() -> None:
    reader = _feed_in([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    assert reader.done and not reader.reusable
    big = ReplyReader(max_body=10)
    assert big.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 20)
    assert big.status == 200 and not big.reusable


@pytest.mark.parametrize(
    "response",
    [
        b"SMPP/3.4 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    ],
)
def test_garbage_is_a_bad_response(response: bytes) -> None:
    with pytest.raises(BadResponse):
        ReplyReader().feed(response)


@given(st.lists(st.binary(max_size=200), max_size=10))
def test_random_bytes_never_raise_anything_but_bad_response(pieces: list[bytes]) -> None:
    reader = ReplyReader()
    try:
        _feed_in(pieces, reader)
    except BadResponse:
        return
    reader.closed()
