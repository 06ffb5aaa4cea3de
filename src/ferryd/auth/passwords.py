"""Password hashes: ferryd writes argon2id, and verifies a few older schemes too.

SHA-256/512-crypt (``$5$``, ``$6$``, as in /etc/shadow) and passlib's ``$pbkdf2-sha256$`` and
``$pbkdf2-sha512$`` are accepted so accounts imported from other systems keep their passwords.
Comparison is constant-time. Hashing is deliberately slow (that is its job), so callers go
through :func:`ferryd.auth.hashing.verify`, which runs it off the event loop. Error messages
say what is wrong with a stored hash but never repeat the hash or the password, as they end
up in authentication events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ferryd.auth.sha_crypt import parse_hash, sha_crypt

_HASHER = argon2.PasswordHasher()
ARGON2_PREFIX = "$argon2id$"

# Modular-crypt identifier (between the first two '$') -> scheme name.
_SCHEMES = {
    "argon2id": "argon2id",
    "5": "sha256-crypt",
    "6": "sha512-crypt",
    "pbkdf2-sha256": "pbkdf2-sha256",
    "pbkdf2-sha512": "pbkdf2-sha512",
}
_PBKDF2_DIGESTS = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}
_PBKDF2_ROUNDS_MAX = 0xFFFFFFFF  # passlib's limit
# The most work one verification may cost. Each login attempt pays it, so a hash with an
# absurd cost (a typo, a hostile provisioning feed) would let anyone who knows the account
# name hold a worker for minutes per attempt. Real hashes are far below: glibc writes 5,000
# SHA-crypt rounds, passlib 29,000 PBKDF2 rounds, argon2-cffi 64 MiB and 3 passes.
# At the caps one verification takes about a second on a 2-core EPYC.
SHA_CRYPT_ROUNDS_CAP = 1_000_000
PBKDF2_ROUNDS_CAP = 5_000_000
ARGON2_MEMORY_CAP_KIB = 1024 * 1024
ARGON2_TIME_CAP = 32
# Offered passwords longer than this never match: SHA-crypt hashes the password once per
# round and once per byte of its own length, so a 250 KB "password" (what an SSH packet
# can carry before login) would cost each attempt seconds of CPU.
PASSWORD_BYTES_MAX = 1024
_ARGON2_FORM = "invalid argon2id hash: expected $argon2id$v=19$m=KiB,t=passes,p=lanes$salt$hash"
_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9.-]{0,31}")
_AB64 = re.compile(r"[A-Za-z0-9./]*")


class UnsupportedHash(ValueError):
    """The stored value is not a hash ferryd can verify (event 20101 in SFTPPlus terms)."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def is_hash(value: str) -> bool:
    return value.startswith("$")


def scheme_of(stored: str) -> str:
    """A short name for the scheme of ``stored``, safe to put in a message.

    One of 'argon2id', 'sha256-crypt', 'sha512-crypt', 'pbkdf2-sha256', 'pbkdf2-sha512' or
    'plain text'; an unknown ``$id$...`` gives ``id`` itself when it looks like an identifier,
    otherwise 'unknown' (so a plain-text password that happens to start with '$' is not shown).
    """
    if not stored.startswith("$"):
        return "plain text"
    identifier, dollar, _ = stored[1:].partition("$")
    if identifier in _SCHEMES:
        return _SCHEMES[identifier]
    if dollar and _IDENTIFIER.fullmatch(identifier):
        return identifier
    return "unknown"


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; an empty stored value never matches, nor
    does a password longer than :data:`PASSWORD_BYTES_MAX` bytes.

    Raises ``UnsupportedHash`` for a scheme ferryd does not know or a malformed hash.
    """
    if not stored:
        return False
    scheme = scheme_of(stored)
    if scheme not in _SCHEMES.values():
        raise UnsupportedHash(f"unsupported password hash scheme {scheme!r}")
    # surrogatepass: any str encodes, so no UnicodeEncodeError (which would quote the password).
    secret = password.encode("utf-8", "surrogatepass")
    if len(secret) > PASSWORD_BYTES_MAX:
        return False
    if scheme == "argon2id":
        _check_argon2_cost(stored)
        try:
            return _HASHER.verify(stored, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as error:
            raise UnsupportedHash(f"invalid argon2id hash: {error}") from None
    if scheme in ("sha256-crypt", "sha512-crypt"):
        return _verify_sha_crypt(scheme, stored, secret)
    return _verify_pbkdf2(scheme, stored, secret)


def _too_costly(scheme: str, what: str, cap: int) -> UnsupportedHash:
    return UnsupportedHash(
        f"invalid {scheme} hash: {what} above ferryd's limit of {cap}"
        " (each login attempt would pay it)"
    )


def _check_argon2_cost(stored: str) -> None:
    try:
        parameters = argon2.extract_parameters(stored)
    except InvalidHashError:
        raise UnsupportedHash(_ARGON2_FORM) from None
    if parameters.memory_cost > ARGON2_MEMORY_CAP_KIB:
        raise _too_costly("argon2id", "memory cost (KiB)", ARGON2_MEMORY_CAP_KIB)
    if parameters.time_cost > ARGON2_TIME_CAP:
        raise _too_costly("argon2id", "time cost", ARGON2_TIME_CAP)


def _verify_sha_crypt(scheme: str, stored: str, secret: bytes) -> bool:
    try:
        setting, checksum = parse_hash(stored)
    except ValueError as error:
        raise UnsupportedHash(f"invalid {scheme} hash: {error}") from None
    if setting.rounds > SHA_CRYPT_ROUNDS_CAP:
        raise _too_costly(scheme, "rounds", SHA_CRYPT_ROUNDS_CAP)
    computed = sha_crypt(secret, setting.prefix()).rpartition("$")[2]
    return hmac.compare_digest(computed.encode("ascii"), checksum.encode("ascii"))


def _verify_pbkdf2(scheme: str, stored: str, secret: bytes) -> bool:
    """passlib's ``$pbkdf2-<digest>$rounds$salt$checksum``, salt and checksum in adapted base64."""

    def invalid(reason: str) -> UnsupportedHash:
        return UnsupportedHash(f"invalid {scheme} hash: {reason}")

    parts = stored.split("$")
    if len(parts) != 5:
        raise invalid(f"expected ${scheme}$rounds$salt$checksum")
    _, _, rounds_text, salt_text, checksum_text = parts
    if not (rounds_text.isascii() and rounds_text.isdigit()) or rounds_text.startswith("0"):
        raise invalid("rounds is not a positive decimal number without leading zeros")
    if len(rounds_text) > 10 or int(rounds_text) > _PBKDF2_ROUNDS_MAX:
        raise invalid(f"rounds is above {_PBKDF2_ROUNDS_MAX}")
    if int(rounds_text) > PBKDF2_ROUNDS_CAP:
        raise _too_costly(scheme, "rounds", PBKDF2_ROUNDS_CAP)
    salt = _ab64_decode(salt_text)
    if salt is None:
        raise invalid("salt is not adapted base64")
    checksum = _ab64_decode(checksum_text)
    if checksum is None:
        raise invalid("checksum is not adapted base64")
    digest = _PBKDF2_DIGESTS[scheme]
    size = hashlib.new(digest).digest_size
    if len(checksum) != size:
        raise invalid(f"checksum is not {size} bytes")
    computed = hashlib.pbkdf2_hmac(digest, secret, salt, int(rounds_text))
    return hmac.compare_digest(computed, checksum)


def _ab64_decode(text: str) -> bytes | None:
    """passlib's "adapted base64" (``.`` for ``+``, no ``=`` padding), or None if it is not."""
    if not _AB64.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"./", validate=True)
    except binascii.Error:
        return None
