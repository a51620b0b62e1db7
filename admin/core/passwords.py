"""Password hashing (argon2id, the library's current parameters) and the rules a new one meets."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def weakness(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if password.isdigit() or password.isalpha():
        return "mix letters with digits or symbols"
    return None


# A hash of a random password, verified when no user matches, so that a wrong e-mail
# costs the same time as a wrong password (no user enumeration by timing).
DUMMY_HASH = _HASHER.hash("no such user: constant-time refusal")
