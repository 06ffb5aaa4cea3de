"""Verification of SHA-crypt and passlib PBKDF2 hashes against independent reference values.

SHA-crypt: the vectors published in Drepper's specification, plus hashes made at test time by
``openssl passwd``, ``mkpasswd`` and perl's ``crypt`` (the platform's crypt(3)) when installed.
PBKDF2: references computed here with hashlib and encoded by hand, plus passlib's own vectors.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess

import pytest

from ferryd.auth.passwords import UnsupportedHash, hash_password, scheme_of, verify_password
from ferryd.auth.sha_crypt import ROUNDS_MAX, ROUNDS_MIN, parse_setting, sha_crypt

# "Unix crypt using SHA-256 and SHA-512", Ulrich Drepper, test vectors: setting, key, result.
SPEC_VECTORS = [
    (
        "$5$saltstring",
        "Hello world!",
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    ),
    (
        "$5$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
    (
        "$5$rounds=5000$toolongsaltstring",
        "This is just a test",
        "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
    ),
    (
        "$5$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
    ),
    (
        "$5$rounds=77777$short",
        "we have a short salt string but not a short password",
        "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/",
    ),
    (
        "$5$rounds=123456$asaltof16chars..",
        "a short string",
        "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD",
    ),
    (
        "$5$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
    ),
    (
        "$6$saltstring",
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEd"
        "FCoEOfaS35inz1",
    ),
    (
        "$6$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp"
        "8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "$6$rounds=5000$toolongsaltstring",
        "This is just a test",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1"
        "yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "$6$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66"
        "x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
    ),
    (
        "$6$rounds=77777$short",
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxF"
        "mtlcGZelFl5CxtgfiAc0",
    ),
    (
        "$6$rounds=123456$asaltof16chars..",
        "a short string",
        "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULe"
        "voBK25fs2xXgMNrCzIMVcgEJAstJeonj1",
    ),
    (
        "$6$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF"
        "4ZEQpyUNGc0dqbpBYYBaHHrsX.",
    ),
]

# passlib's documentation example and the known-correct hashes of its own test suite.
PASSLIB_VECTORS = [
    (
        "toomanysecrets",
        "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
    ),
    (
        "password",
        "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ",
    ),
    (
        "\u0399\u03c9\u03b1\u03bd\u03bd\u03b7\u03c2",
        "$pbkdf2-sha256$1212$3SABFJGDtyhrQMVt1uABPw$WyaUoqCLgvz97s523nF4iuOqZNbp5Nt8do/cuaa7AiI",
    ),
    (
        "password",
        "$pbkdf2-sha512$1212$RHY0Fr3IDMSVO/RSZyb5ow$eNLfBK.eVozomMr.1gYa17k9B7KIK25NOEshvhrSX.es"
        "qY3s.FvWZViXz4KoLlQI.BzY/YTNJOiKc5gBYFYGww",
    ),
    (
        "\u0399\u03c9\u03b1\u03bd\u03bd\u03b7\u03c2",
        "$pbkdf2-sha512$1212$KkbvoKGsAIcF8IslDR6skQ$8be/PRmd88Ps8fmPowCJttH9G3vgxpG.Krjt3KT.NP6c"
        "KJ0V4Prarqf.HBwz0dCkJ6xgWnSj2ynXSV7MlvMa8Q",
    ),
]

SECRET = "Hunter2-s3cret"
SHA256_CHECKSUM = "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
SHA512_CHECKSUM = (
    "svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
)
PBKDF2_SALT = "4vjV83LKPjQzk31VI4E0Vw"
PBKDF2_CHECKSUM = "hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"


def ab64(data: bytes) -> str:
    """passlib's adapted base64, done by hand: '.' for '+', padding dropped."""
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("+", ".")


def pbkdf2_reference(digest: str, password: str, salt: bytes, rounds: int) -> str:
    key = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), salt, rounds)
    return f"$pbkdf2-{digest}${rounds}${ab64(salt)}${ab64(key)}"


def run_tool(*command: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    return result.stdout.strip()


# --- SHA-crypt --------------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "password", "expected"), SPEC_VECTORS)
def test_sha_crypt_reproduces_the_specification_vectors(
    setting: str, password: str, expected: str
) -> None:
    assert sha_crypt(password.encode(), setting) == expected
    assert verify_password(expected, password)
    assert not verify_password(expected, password + "!")
    assert not verify_password(expected, password[:-1])


def test_sha_crypt_takes_a_complete_hash_as_setting() -> None:
    _, password, expected = SPEC_VECTORS[2]
    assert sha_crypt(password.encode(), expected) == expected
    assert sha_crypt(b"other", expected) != expected


@pytest.mark.parametrize(
    ("flag", "salt", "password"),
    [
        ("-5", "saltsalt", "correct horse battery staple"),
        ("-5", "a", "x"),
        ("-5", "averyveryverylongsalt", "pässwörd"),
        ("-5", "rounds=1234$./AZaz09", "with rounds"),
        ("-6", "saltsalt", "correct horse battery staple"),
        ("-6", "Q9", "p" * 200),
        ("-6", "averyveryverylongsalt", "日本語のパスワード"),
        ("-6", "rounds=20000$abc", "with rounds"),
    ],
)
def test_sha_crypt_matches_openssl_passwd(flag: str, salt: str, password: str) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    expected = run_tool("openssl", "passwd", flag, "-salt", salt, "-stdin", stdin=password + "\n")
    assert expected.startswith(f"${flag[1]}$")
    assert sha_crypt(password.encode(), f"${flag[1]}${salt}") == expected
    assert verify_password(expected, password)
    assert not verify_password(expected, password.upper() + "?")


def test_passwords_over_1024_bytes_never_match_even_their_own_hash() -> None:
    """SHA-crypt's work grows with the square of the password's length: an SSH packet can
    carry a 250 KB password before login, so longer offers are refused unhashed."""
    longest, too_long = "é" * 512, "é" * 512 + "x"
    for password in (longest, too_long):
        stored = sha_crypt(password.encode(), "$6$saltsalt")
        assert verify_password(stored, password) is (password == longest)
    assert not verify_password(hash_password(too_long), too_long)
    assert not verify_password("$6$saltsalt$" + "x" * 86, "x" * 250_000)


def test_sha_crypt_matches_mkpasswd_with_rounds() -> None:
    if shutil.which("mkpasswd") is None:
        pytest.skip("mkpasswd is not installed")
    expected = run_tool("mkpasswd", "-m", "sha-512", "-R", "80000", "-S", "saltsaltsalt", "pw")
    assert expected.startswith("$6$rounds=80000$saltsaltsalt$")
    assert sha_crypt(b"pw", "$6$rounds=80000$saltsaltsalt") == expected
    assert verify_password(expected, "pw")
    assert not verify_password(expected, "pW")


@pytest.mark.parametrize(
    ("setting", "password"),
    [
        ("$5$x", ""),
        ("$6$", "empty salt"),
        ("$6$rounds=80000$saltsaltsalt", "pw"),
        ("$5$rounds=1000$min", "the minimum number of rounds"),
        ("$6$rounds=5000$explicit", "default rounds, written out"),
    ],
)
def test_sha_crypt_matches_the_platform_crypt_via_perl(setting: str, password: str) -> None:
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    script = "binmode STDOUT; print crypt($ARGV[0], $ARGV[1]) // ''"
    expected = run_tool("perl", "-e", script, password, setting)
    if not expected.startswith(setting[:3]):  # e.g. "*0": no SHA-crypt in this crypt(3)
        pytest.skip("the platform crypt(3) does not support this SHA-crypt setting")
    assert sha_crypt(password.encode(), setting) == expected
    assert verify_password(expected, password)
    assert not verify_password(expected, password + " ")


def test_rounds_are_clamped_to_the_specified_range() -> None:
    assert parse_setting("$5$rounds=1$s").rounds == ROUNDS_MIN
    assert parse_setting("$5$rounds=0$s").rounds == ROUNDS_MIN
    assert parse_setting("$6$rounds=1000000000$s").rounds == ROUNDS_MAX
    assert parse_setting("$6$rounds=99999999999999999999999$s").rounds == ROUNDS_MAX
    assert parse_setting("$6$rounds=0000000000000000000002000$s").rounds == 2000
    assert parse_setting("$6$s").rounds == 5000
    assert not parse_setting("$6$s").explicit_rounds


def test_leading_zeros_in_stored_rounds_still_verify() -> None:
    stored = "$5$rounds=05000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"
    assert verify_password(stored, "This is just a test")


# --- PBKDF2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "stored"), PASSLIB_VECTORS)
def test_pbkdf2_verifies_passlib_published_vectors(password: str, stored: str) -> None:
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")
    assert not verify_password(stored, "")


@pytest.mark.parametrize("digest", ["sha256", "sha512"])
@pytest.mark.parametrize(
    ("password", "salt", "rounds"),
    [
        ("correct horse battery staple", b"\xfb\xef\xff" * 5 + b"\x00", 1000),  # '+' -> '.'
        ("pässwörd", os.urandom(16), 1),
        ("", b"salt", 29000),
        ("no salt at all", b"", 10),
        ("日本語", os.urandom(21), 1212),
    ],
)
def test_pbkdf2_verifies_hashlib_references(
    digest: str, password: str, salt: bytes, rounds: int
) -> None:
    stored = pbkdf2_reference(digest, password, salt, rounds)
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")
    assert not verify_password(stored, password.upper() + "Y")


def test_the_ab64_reference_really_uses_dots() -> None:
    stored = pbkdf2_reference("sha256", "x", b"\xfb\xef\xff", 5)
    assert "$.." in stored
    assert verify_password(stored, "x")


# --- common behaviour -------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "anything", SECRET])
def test_an_empty_stored_value_never_matches(password: str) -> None:
    assert not verify_password("", password)


def test_argon2id_still_round_trips() -> None:
    stored = hash_password(SECRET)
    assert scheme_of(stored) == "argon2id"
    assert verify_password(stored, SECRET)
    assert not verify_password(stored, SECRET + "!")


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "argon2id"),
        ("$5$salt$" + SHA256_CHECKSUM, "sha256-crypt"),
        ("$6$rounds=5000$salt$" + SHA512_CHECKSUM, "sha512-crypt"),
        (PASSLIB_VECTORS[1][1], "pbkdf2-sha256"),
        (PASSLIB_VECTORS[3][1], "pbkdf2-sha512"),
        ("plain-text-password", "plain text"),
        ("", "plain text"),
        ("$1$old$md5", "1"),
        ("$2b$12$abcdefghijklmnopqrstuv", "2b"),
        ("$" + SECRET, "unknown"),
        ("$Hunter2 s3cret$x", "unknown"),
    ],
)
def test_scheme_of_names_the_scheme(stored: str, scheme: str) -> None:
    assert scheme_of(stored) == scheme


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("$1$old$md5", "unsupported password hash scheme '1'"),
        ("$argon2i$v=19$m=512,t=2,p=2$c2FsdA$aGFzaA", "unsupported password hash scheme 'argon2i'"),
        ("not a hash", "unsupported password hash scheme 'plain text'"),
        ("$" + SECRET, "unsupported password hash scheme 'unknown'"),
    ],
)
def test_unknown_schemes_are_unsupported(stored: str, message: str) -> None:
    with pytest.raises(UnsupportedHash) as caught:
        verify_password(stored, SECRET)
    assert str(caught.value) == message


MALFORMED = [
    # SHA-256/512-crypt
    ("$5$", "expected $id$[rounds=N$]salt$checksum"),
    ("$5$saltonly", "expected $id$[rounds=N$]salt$checksum"),
    ("$6$rounds=5000$saltonly", "expected $id$[rounds=N$]salt$checksum"),
    ("$5$salt$" + SHA256_CHECKSUM + "$extra", "expected $id$[rounds=N$]salt$checksum"),
    ("$5$rounds=5000", "rounds=N is not followed by '$'"),
    ("$5$rounds=abc$salt$" + SHA256_CHECKSUM, "rounds is not a decimal number"),
    ("$5$rounds=$salt$" + SHA256_CHECKSUM, "rounds is not a decimal number"),
    ("$5$rounds=-5000$salt$" + SHA256_CHECKSUM, "rounds is not a decimal number"),
    ("$5$rounds= 5000$salt$" + SHA256_CHECKSUM, "rounds is not a decimal number"),
    ("$5$rounds=5_000$salt$" + SHA256_CHECKSUM, "rounds is not a decimal number"),
    ("$6$rounds=\u0665\u0660\u0660\u0660$salt$" + SHA512_CHECKSUM, "rounds is not a decimal"),
    ("$5$s\u00e4lt$" + SHA256_CHECKSUM, "salt is not ASCII"),
    ("$6$seventeen-chars-x$" + SHA512_CHECKSUM, "salt is longer than 16 characters"),
    ("$5$salt$", "checksum is not 43 characters"),
    ("$5$salt$" + SHA256_CHECKSUM[:-1], "checksum is not 43 characters"),
    ("$5$salt$" + SHA512_CHECKSUM, "checksum is not 43 characters"),
    ("$6$salt$" + SHA256_CHECKSUM, "checksum is not 86 characters"),
    ("$5$salt$" + SHA256_CHECKSUM[:-1] + "+", "checksum is not 43 characters"),
    # A cost every login attempt would pay for minutes is refused without computing it.
    ("$6$rounds=999999999$salt$" + SHA512_CHECKSUM, "rounds above ferryd's limit of 1000000"),
    ("$5$rounds=1000001$salt$" + SHA256_CHECKSUM, "rounds above ferryd's limit of 1000000"),
    (f"$pbkdf2-sha256$5000001${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds above ferryd's limit"),
    ("$argon2id$v=19$m=2097152,t=3,p=4$c2FsdA$aGFzaA", "memory cost (KiB) above ferryd's limit"),
    ("$argon2id$v=19$m=65536,t=33,p=4$c2FsdA$aGFzaA", "time cost above ferryd's limit of 32"),
    ("$argon2id$m=65536", "expected $argon2id$v=19$m=KiB,t=passes,p=lanes$salt$hash"),
    # passlib PBKDF2
    ("$pbkdf2-sha256$", "expected $pbkdf2-sha256$rounds$salt$checksum"),
    (f"$pbkdf2-sha256$1212${PBKDF2_SALT}", "expected $pbkdf2-sha256$rounds$salt$checksum"),
    (
        f"$pbkdf2-sha256$1212${PBKDF2_SALT}${PBKDF2_CHECKSUM}$",
        "expected $pbkdf2-sha256$rounds$salt$checksum",
    ),
    (f"$pbkdf2-sha256$${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is not a positive decimal"),
    (f"$pbkdf2-sha256$01212${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "without leading zeros"),
    (f"$pbkdf2-sha256$0${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is not a positive decimal"),
    (f"$pbkdf2-sha256$-1${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is not a positive decimal"),
    (f"$pbkdf2-sha256$12a${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is not a positive decimal"),
    (f"$pbkdf2-sha256$4294967296${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is above 4294967295"),
    (f"$pbkdf2-sha256$99999999999${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "rounds is above"),
    (f"$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0V+${PBKDF2_CHECKSUM}", "salt is not adapted base64"),
    (f"$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw==${PBKDF2_CHECKSUM}", "salt is not adapted"),
    (f"$pbkdf2-sha256$1212$4vjV 83LKPjQzk31VI4E0Vw${PBKDF2_CHECKSUM}", "salt is not adapted"),
    (f"$pbkdf2-sha256$1212$4vjV8${PBKDF2_CHECKSUM}", "salt is not adapted base64"),
    (f"$pbkdf2-sha256$1212${PBKDF2_SALT}$hsYF68OiOUPdDZ1Fg_fJPeq1h", "checksum is not adapted"),
    (f"$pbkdf2-sha256$1212${PBKDF2_SALT}$", "checksum is not 32 bytes"),
    (f"$pbkdf2-sha256$1212${PBKDF2_SALT}${PBKDF2_CHECKSUM[:-3]}", "checksum is not 32 bytes"),
    (f"$pbkdf2-sha512$1212${PBKDF2_SALT}${PBKDF2_CHECKSUM}", "checksum is not 64 bytes"),
]


@pytest.mark.parametrize(("stored", "reason"), MALFORMED)
def test_malformed_hashes_are_unsupported(stored: str, reason: str) -> None:
    with pytest.raises(UnsupportedHash) as caught:
        verify_password(stored, SECRET)
    message = str(caught.value)
    assert message.startswith(f"invalid {scheme_of(stored)} hash: ")
    assert reason in message


@pytest.mark.parametrize("stored", [stored for stored, _ in MALFORMED])
def test_messages_never_include_the_password_or_the_hash(stored: str) -> None:
    with pytest.raises(UnsupportedHash) as caught:
        verify_password(stored, SECRET)
    message = str(caught.value)
    assert SECRET not in message
    if stored.count("$") > 2:  # more than the bare "$scheme$" that a message may name
        assert stored not in message
    for part in stored.split("$")[2:]:  # rounds, salt, checksum: not the scheme identifier
        if len(part) > 6:  # long enough not to be a word of the message itself
            assert part not in message


def test_messages_never_include_the_password_when_it_is_stored_in_plain_text() -> None:
    for stored in (SECRET, "$" + SECRET, "$" + SECRET + "$"):
        with pytest.raises(UnsupportedHash) as caught:
            verify_password(stored, SECRET)
        assert SECRET not in str(caught.value)


def test_passwords_that_are_not_valid_utf8_text_do_not_raise() -> None:
    stored = pbkdf2_reference("sha256", "x", b"salt", 10)
    assert not verify_password(stored, "\udc80" + SECRET)
    assert not verify_password(SPEC_VECTORS[0][2], "\ud800")
