"""SHA-256-crypt (``$5$``) and SHA-512-crypt (``$6$``), from Ulrich Drepper's specification.

These are the /etc/shadow hashes of most Linux systems; verifying them lets accounts be moved
to ferryd without a password reset. The standard library's ``crypt`` module is deprecated (and
gone in Python 3.13) and depends on the platform's libc, so this is written on ``hashlib``.
Reference: "Unix crypt using SHA-256 and SHA-512", https://www.akkadia.org/drepper/SHA-crypt.txt

Errors are ``ValueError`` whose message names what is wrong, never the setting or the password.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
SALT_MAX = 16
ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROUNDS_PREFIX = "rounds="


@dataclass(frozen=True)
class _Variant:
    ident: str
    hash_name: str
    digest_size: int
    # Byte order of the final digest in the output, in groups written most significant first.
    groups: tuple[tuple[int, ...], ...]

    @property
    def checksum_length(self) -> int:
        return sum((len(group) * 8 + 5) // 6 for group in self.groups)


_SHA256 = _Variant(
    "$5$",
    "sha256",
    32,
    (
        (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
        (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
        (31, 30),
    ),
)  # fmt: skip
_SHA512 = _Variant(
    "$6$",
    "sha512",
    64,
    (
        (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4),
        (47, 5, 26), (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51),
        (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35),
        (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19),
        (62, 20, 41), (63,),
    ),
)  # fmt: skip
_VARIANTS = {variant.ident: variant for variant in (_SHA256, _SHA512)}
_CHECKSUM = re.compile(r"[./0-9A-Za-z]*")


@dataclass(frozen=True)
class Setting:
    """The parameters of one hash: which digest, how many rounds, and the (truncated) salt."""

    variant: _Variant
    rounds: int
    explicit_rounds: bool
    salt: str

    def prefix(self) -> str:
        rounds = f"{_ROUNDS_PREFIX}{self.rounds}$" if self.explicit_rounds else ""
        return f"{self.variant.ident}{rounds}{self.salt}"


def parse_setting(setting: str) -> Setting:
    """Read ``$5$[rounds=N$]salt[$...]``; the salt ends at ``$`` and is cut to 16 characters."""
    variant = _VARIANTS.get(setting[:3])
    if variant is None:
        raise ValueError("setting does not start with $5$ or $6$")
    rest = setting[3:]
    rounds, explicit = ROUNDS_DEFAULT, False
    if rest.startswith(_ROUNDS_PREFIX):
        digits, dollar, rest = rest[len(_ROUNDS_PREFIX) :].partition("$")
        if not dollar:
            raise ValueError("rounds=N is not followed by '$'")
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError("rounds is not a decimal number")
        significant = digits.lstrip("0")
        # Out-of-range counts are clamped, as the specification says; long ones are just large.
        value = int(significant or "0") if len(significant) <= 10 else ROUNDS_MAX
        rounds, explicit = min(max(value, ROUNDS_MIN), ROUNDS_MAX), True
    salt = rest.partition("$")[0][:SALT_MAX]
    if not salt.isascii():
        raise ValueError("salt is not ASCII")
    return Setting(variant, rounds, explicit, salt)


def parse_hash(stored: str) -> tuple[Setting, str]:
    """Split a complete hash into its setting and checksum, rejecting anything crypt never makes."""
    setting = parse_setting(stored)
    body = stored[len(setting.variant.ident) :]
    parts = body.split("$")
    expected = 3 if setting.explicit_rounds else 2
    if len(parts) != expected:
        raise ValueError("expected $id$[rounds=N$]salt$checksum")
    salt, checksum = parts[-2], parts[-1]
    if len(salt) > SALT_MAX:
        raise ValueError(f"salt is longer than {SALT_MAX} characters")
    length = setting.variant.checksum_length
    if len(checksum) != length or not _CHECKSUM.fullmatch(checksum):
        raise ValueError(f"checksum is not {length} characters of [./0-9A-Za-z]")
    return setting, checksum


def _repeat(block: bytes, length: int) -> bytes:
    """``block`` repeated and cut to ``length`` bytes (the spec's "for each block ... add")."""
    return (block * (length // len(block) + 1))[:length]


def _checksum(password: bytes, setting: Setting) -> str:
    variant = setting.variant
    salt = setting.salt.encode("ascii")

    def digest(*parts: bytes) -> bytes:
        context = hashlib.new(variant.hash_name)
        for part in parts:
            context.update(part)
        return context.digest()

    # Digest B, then digest A: password, salt, B stretched to the password's length, then one
    # B or password per bit of that length (lowest bit first).
    b = digest(password, salt, password)
    a = hashlib.new(variant.hash_name, password + salt + _repeat(b, len(password)))
    length = len(password)
    while length:
        a.update(b if length & 1 else password)
        length >>= 1
    c = a.digest()

    # P from DP (the password once per byte of its length), S from DS (the salt 16 + A[0] times).
    # Fed piece by piece: one buffer of the password times its length is quadratic memory.
    dp = hashlib.new(variant.hash_name)
    for _ in range(len(password)):
        dp.update(password)
    p = _repeat(dp.digest(), len(password))
    s = _repeat(digest(salt * (16 + c[0])), len(salt))

    for i in range(setting.rounds):
        context = hashlib.new(variant.hash_name)
        context.update(p if i & 1 else c)
        if i % 3:
            context.update(s)
        if i % 7:
            context.update(p)
        context.update(c if i & 1 else p)
        c = context.digest()

    out: list[str] = []
    for group in variant.groups:
        value = 0
        for index in group:
            value = (value << 8) | c[index]
        for _ in range((len(group) * 8 + 5) // 6):
            out.append(ALPHABET[value & 0x3F])
            value >>= 6
    return "".join(out)


def sha_crypt(password: bytes, setting: str) -> str:
    """The full hash of ``password`` for ``setting`` (``$5$salt``, ``$6$rounds=N$salt``...).

    ``setting`` may be a complete hash: like crypt(3), only its prefix up to the salt counts.
    """
    parsed = parse_setting(setting)
    return f"{parsed.prefix()}${_checksum(password, parsed)}"
