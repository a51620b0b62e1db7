"""Keys of the at-rest text encryption: base64 of 32 bytes, named by a short id.

Pure, so that settings refuse a bad key when the file is read (``check-config`` too),
not when the first text is written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

KEY_BYTES = 32


class BadKey(ValueError):
    """A configured key is not base64 of 32 bytes."""


def decode_key(encoded: str, name: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise BadKey(f"{name}: not base64") from None
    if len(key) != KEY_BYTES:
        raise BadKey(f"{name}: must be {KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def key_id(key: bytes) -> str:
    """The first 8 hex digits of the key's SHA-256: stored with each text it sealed."""
    return hashlib.sha256(key).hexdigest()[:8]
