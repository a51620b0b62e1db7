"""Time-ordered 63-bit message ids made in-process (no database round trip per id).

Layout: milliseconds since 2026-01-01 (41 bits, ~69 years) | node (10 bits) | sequence
(12 bits). Each process takes a distinct node number from PostgreSQL at start, so ids
from any number of processes never collide; they sort by acceptance time, which is
what partitioning by day and "newest first" listings want.
"""

from __future__ import annotations

import time
from collections.abc import Callable

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NODE_BITS = 10
SEQ_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQ = (1 << SEQ_BITS) - 1


class IdGenerator:
    def __init__(self, node: int, clock: Callable[[], float] = time.time) -> None:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"node must be 0..{MAX_NODE}")
        self._node = node
        self._clock = clock
        self._last_ms = 0
        self._seq = 0

    def next(self) -> int:
        now_ms = max(int(self._clock() * 1000) - EPOCH_MS, self._last_ms)
        if now_ms == self._last_ms:
            self._seq += 1
            if self._seq > MAX_SEQ:  # 4096 ids in one ms: borrow the next ms
                now_ms, self._seq = now_ms + 1, 0
        else:
            self._seq = 0
        self._last_ms = now_ms
        return (now_ms << (NODE_BITS + SEQ_BITS)) | (self._node << SEQ_BITS) | self._seq


def id_time_ms(message_id: int) -> int:
    """The Unix time in ms at which the id was made."""
    return (message_id >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS
