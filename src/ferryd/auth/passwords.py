"""Password hashes: ferryd writes argon2id; verification is constant-time and off the loop.

Hashing is deliberately slow (that is its job), so callers run ``verify`` in a worker thread.
"""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = argon2.PasswordHasher()
ARGON2_PREFIX = "$argon2id$"


class UnsupportedHash(ValueError):
    """The stored value is not a hash ferryd can verify (event 20101 in SFTPPlus terms)."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def is_hash(value: str) -> bool:
    return value.startswith("$")


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; an empty stored value never matches."""
    if not stored:
        return False
    if stored.startswith(ARGON2_PREFIX):
        try:
            return _HASHER.verify(stored, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as error:
            raise UnsupportedHash(f"invalid argon2id hash: {error}") from None
    scheme = stored.split("$")[1] if stored.startswith("$") else "plain text"
    raise UnsupportedHash(f"unsupported password hash scheme {scheme!r}")
