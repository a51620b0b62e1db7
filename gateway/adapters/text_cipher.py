"""Message texts encrypted at rest (optional): AES-256-GCM on the way into PostgreSQL.

With ``[store] encryption_key`` set, the stores write ``messages.body`` and
``inbound_messages.body`` as ``enc1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`` and
read them back transparently. The key id is the first 8 hex digits of the key's SHA-256,
so ``old_encryption_keys`` keep rows written before a rotation readable; rows written
while encryption was off stay plaintext and are read as they are. A body that looks
encrypted but names no key we hold, or fails its tag, is returned as stored (and counted):
losing a key must not take the dispatcher down.

The stores are module functions over a pool, so the cipher is process-wide: the gateway
installs it once at start (``install``), like the pool it opens; the default is plain.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.core.cipher_keys import BadKey, decode_key, key_id
from gateway.settings import StoreSettings

__all__ = ["PREFIX", "BadKey", "TextCipher", "decode_key", "from_settings", "key_id"]

PREFIX = "enc1:"
NONCE_BYTES = 12


@dataclass
class TextCipher:
    """Seals with the current key (None: plaintext), opens with any key it holds."""

    current: bytes | None = None
    old: Sequence[bytes] = ()
    unreadable: int = 0  # bodies that looked sealed but could not be opened
    _keys: dict[str, AESGCM] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = [k for k in (self.current, *self.old) if k is not None]
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self._current_id = key_id(self.current) if self.current is not None else None

    def seal(self, text: str) -> str:
        if self._current_id is None:
            return text
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current_id].encrypt(nonce, text.encode(), None)
        return f"{PREFIX}{self._current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def unseal(self, body: str) -> str:
        if not body.startswith(PREFIX):
            return body
        kid, _, blob = body[len(PREFIX) :].partition(":")
        aead = self._keys.get(kid)
        try:
            raw = base64.b64decode(blob, validate=True)
            if aead is None:
                raise InvalidTag
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
        except (InvalidTag, binascii.Error, ValueError):
            self.unreadable += 1
            return body


_active = TextCipher()


def install(cipher: TextCipher) -> None:
    global _active
    _active = cipher


def active() -> TextCipher:
    return _active


def from_settings(store: StoreSettings) -> TextCipher:
    """From ``[store]``'s base64 keys; a bad one raises naming it."""
    current = store.encryption_key
    return TextCipher(
        decode_key(current.reveal(), "store.encryption_key") if current else None,
        [
            decode_key(k.reveal(), f"store.old_encryption_keys[{i}]")
            for i, k in enumerate(store.old_encryption_keys)
        ],
    )


def seal(text: str) -> str:
    return _active.seal(text)


def unseal(body: str) -> str:
    return _active.unseal(body)
