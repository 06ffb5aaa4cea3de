"""``ferryd version``, ``--help``, ``ferryd init`` and ``ferryd check``, run as a user would."""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ferryd import __version__
from ferryd.auth.passwords import verify_password

if TYPE_CHECKING:
    from conftest import BadInput, ConfigFolder, Ferryd, Initialised

PLANNED_FILES = ("server.ini", "ssl_certificate.pem", "ssh_host_ed25519_key", "ssh_host_rsa_key")
ADMIN_LINE = re.compile(r"^Administrator\s+admin / (\S+)$", re.MULTILINE)
DEMO_LINE = re.compile(r"^Demo account\s+demo / (\S+)$", re.MULTILINE)


def read_ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def digests(folder: Path) -> dict[str, str]:
    """Content hash of every file in ``folder``, to prove nothing was rewritten."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


# -- version and help ---------------------------------------------------------------------------


def test_version_prints_the_package_version(ferryd: Ferryd) -> None:
    result = ferryd.run("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ferryd {__version__}"


@pytest.mark.parametrize(
    "subcommand", [[], ["init"], ["serve"], ["check"], ["events"], ["options"], ["version"]]
)
def test_help_works_for_every_subcommand(ferryd: Ferryd, subcommand: list[str]) -> None:
    result = ferryd.run(*subcommand, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ferryd")
    if subcommand:
        assert f"usage: ferryd {subcommand[0]}" in result.stdout
    if subcommand and subcommand[0] in ("init", "serve", "check"):
        assert "--config-dir" in result.stdout
    if subcommand == ["serve"]:
        assert "--node-name" in result.stdout


# -- init ---------------------------------------------------------------------------------------


def test_init_creates_a_complete_folder_that_check_accepts(
    ferryd: Ferryd, initialised: Initialised
) -> None:
    folder = initialised.folder
    assert initialised.result.returncode == 0, initialised.result.stderr
    assert initialised.result.stdout.startswith(f"Created a new configuration in {folder}")
    for name in PLANNED_FILES:
        assert (folder / name).is_file(), f"init did not create {name}"
    for name in ("ssl_certificate.pem", "ssh_host_ed25519_key", "ssh_host_rsa_key"):
        assert (folder / name).stat().st_mode & 0o077 == 0, f"{name} is readable by others"

    check = ferryd.run("check", "--config-dir", folder)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == f"{folder / 'server.ini'}: configuration is valid"


def test_init_server_ini_references_the_generated_keys_and_certificate(
    initialised: Initialised,
) -> None:
    folder = initialised.folder
    text = (folder / "server.ini").read_text(encoding="utf-8")
    assert any(line.startswith(("#", ";")) for line in text.splitlines()), "not commented"
    server = read_ini(folder / "server.ini")["server"]
    key_files = [name.strip() for name in server["ssh_server_keys"].split(",")]
    assert key_files == ["ssh_host_ed25519_key", "ssh_host_rsa_key"]

    ed25519_key = serialization.load_ssh_private_key(
        (folder / key_files[0]).read_bytes(), password=None
    )
    assert isinstance(ed25519_key, ed25519.Ed25519PrivateKey)
    rsa_key = serialization.load_ssh_private_key(
        (folder / key_files[1]).read_bytes(), password=None
    )
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 3072

    pem = (folder / server["tls_private_certificate"].strip()).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    private_key = serialization.load_pem_private_key(pem, password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.issuer == certificate.subject, "certificate is not self-signed"
    assert certificate.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) == private_key.public_key().public_bytes(serialization.Encoding.PEM, public)


def test_init_prints_admin_and_demo_passwords_that_match_the_stored_hashes(
    initialised: Initialised,
) -> None:
    folder, output = initialised.folder, initialised.result.stdout
    admin, demo = ADMIN_LINE.search(output), DEMO_LINE.search(output)
    assert admin and demo, output
    admin_password, demo_password = admin.group(1), demo.group(1)
    assert admin_password != demo_password

    text = (folder / "server.ini").read_text(encoding="utf-8")
    assert admin_password not in text and demo_password not in text, "plain password stored"
    ini = read_ini(folder / "server.ini")
    administrators = [s for s in ini.sections() if s.startswith("administrators/")]
    accounts = [s for s in ini.sections() if s.startswith("accounts/")]
    assert [ini[s]["name"] for s in administrators] == ["admin"]
    assert [ini[s]["name"] for s in accounts] == ["demo"]
    assert verify_password(ini[administrators[0]]["password"], admin_password)
    assert verify_password(ini[accounts[0]]["password"], demo_password)


def test_init_generates_different_passwords_each_time(
    ferryd: Ferryd, tmp_path: Path, initialised: Initialised
) -> None:
    again = ferryd.run("init", "--config-dir", tmp_path / "again")
    first, second = ADMIN_LINE.search(initialised.result.stdout), ADMIN_LINE.search(again.stdout)
    assert first and second, again.stdout + again.stderr
    assert first.group(1) != second.group(1)
    first, second = DEMO_LINE.search(initialised.result.stdout), DEMO_LINE.search(again.stdout)
    assert first and second
    assert first.group(1) != second.group(1)


def test_init_twice_refuses_with_exit_1_and_changes_nothing(
    ferryd: Ferryd, tmp_path: Path, initialised: Initialised
) -> None:
    folder = tmp_path / "conf"
    shutil.copytree(initialised.folder, folder)
    before = digests(folder)

    result = ferryd.run("init", "--config-dir", folder)

    assert result.returncode == 1
    assert "refusing to overwrite" in result.stderr
    assert str(folder / "server.ini") in result.stderr
    assert "Administrator" not in result.stdout, "a new password was printed"
    assert digests(folder) == before


@pytest.mark.parametrize("existing", ["server.ini", "ssh_host_rsa_key"])
def test_init_refuses_when_any_file_it_would_create_exists(
    ferryd: Ferryd, tmp_path: Path, existing: str
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / existing).write_text("precious\n")

    result = ferryd.run("init", "--config-dir", folder)

    assert result.returncode == 1
    assert f"refusing to overwrite existing files: {folder / existing}" in result.stderr
    assert [p.name for p in folder.iterdir()] == [existing], "init wrote files anyway"
    assert (folder / existing).read_text() == "precious\n"


def test_init_never_overwrites_an_existing_public_key_file(ferryd: Ferryd, tmp_path: Path) -> None:
    # The .pub files are written by init too, so an existing one must be kept as well.
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "ssh_host_rsa_key.pub").write_text("ssh-rsa MY-OWN-PUBLIC-KEY\n")

    result = ferryd.run("init", "--config-dir", folder)

    assert (folder / "ssh_host_rsa_key.pub").read_text() == "ssh-rsa MY-OWN-PUBLIC-KEY\n"
    assert result.returncode == 1
    assert "ssh_host_rsa_key.pub" in result.stderr


def test_init_on_a_path_that_is_a_regular_file_fails_with_one_clear_line(
    ferryd: Ferryd, tmp_path: Path
) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a folder\n")

    result = ferryd.run("init", "--config-dir", target)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert str(target) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert target.read_text() == "not a folder\n"


# -- check --------------------------------------------------------------------------------------


def test_check_accepts_a_valid_configuration_with_exit_0(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    result = ferryd.run("check", "--config-dir", config.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ferryd.output_lines(result) == [f"{config.ini}: configuration is valid"]


def test_check_reports_each_kind_of_bad_input_as_one_line_with_file_and_line(
    ferryd: Ferryd, config: ConfigFolder, bad_input: BadInput
) -> None:
    expected = bad_input.apply(config)

    result = ferryd.run("check", "--config-dir", config.path)

    assert result.returncode == 1
    lines = ferryd.output_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected.prefix), f"{lines[0]!r} should start {expected.prefix!r}"
    assert expected.message in lines[0]


def test_check_reports_every_problem_one_line_each_in_file_order(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    text = config.write(
        config.minimal_ini(
            handler_options="enabled = maybe",
            extra="""
            [accounts/acme-uuid]
            description = has no name

            [event-handlers/untyped]
            path = log/untyped.log
            """,
        )
    )

    result = ferryd.run("check", "--config-dir", config.path)

    assert result.returncode == 1
    assert [
        line.split(" missing")[0].split(" expected")[0] for line in ferryd.output_lines(result)
    ] == [
        f"{config.ini}:{config.line_of(text, 'enabled = maybe')}: [event-handlers/audit] enabled:",
        f"{config.ini}:{config.line_of(text, '[accounts/acme-uuid]')}: [accounts/acme-uuid] name:",
        f"{config.ini}:{config.line_of(text, '[event-handlers/untyped]')}: "
        "[event-handlers/untyped] type:",
    ]


def test_check_on_a_missing_folder_fails_with_one_line(ferryd: Ferryd, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = ferryd.run("check", "--config-dir", missing)
    assert result.returncode == 1
    lines = ferryd.output_lines(result)
    assert len(lines) == 1
    assert lines[0].startswith(f"{missing / 'server.ini'}: cannot read")


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root reads files whatever their mode, so chmod 000 cannot make server.ini "
    "unreadable; the unreadable-file case is covered by server.ini being a folder",
)
def test_check_reports_an_unreadable_server_ini(ferryd: Ferryd, config: ConfigFolder) -> None:
    config.ini.chmod(0)
    try:
        result = ferryd.run("check", "--config-dir", config.path)
    finally:
        config.ini.chmod(0o600)
    assert result.returncode == 1
    assert ferryd.output_lines(result) == [f"{config.ini}: cannot read: Permission denied"]


def test_check_applies_an_override_that_replaces_a_single_option(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    # server.ini alone is invalid; the override replaces just that option of the section,
    # and the section's other options (type, path...) still come from server.ini.
    config.write(config.minimal_ini(handler_options="enabled = maybe"))
    config.write_override("[event-handlers/audit]\nenabled = yes\n")

    result = ferryd.run("check", "--config-dir", config.path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_check_applies_an_override_that_adds_a_section(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    config.write_override(config.handler_section("extra", "log/{host.name}-extra.log").lstrip("\n"))
    assert ferryd.run("check", "--config-dir", config.path).returncode == 0

    # The added section really is validated: breaking it makes check fail.
    text = config.write_override(config.handler_section("extra", "log/extra.log", "enabled = 2"))
    result = ferryd.run("check", "--config-dir", config.path)
    assert result.returncode == 1
    assert ferryd.output_lines(result)[0].startswith(
        f"{config.override}:{config.line_of(text, 'enabled = 2')}: [event-handlers/extra] enabled:"
    )


def test_check_node_name_decides_the_log_path_that_is_checked(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    # log/{host.name}/... : a node whose folder would be a regular file cannot log.
    config.write(config.minimal_ini(log_path="log/{host.name}/audit.log"))
    (config.path / "log").mkdir()
    (config.path / "log" / "blocked").write_text("a file, not a folder\n")

    good = ferryd.run("check", "--config-dir", config.path, "--node-name", "free")
    bad = ferryd.run("check", "--config-dir", config.path, "--node-name", "blocked")

    assert good.returncode == 0, good.stdout + good.stderr
    assert bad.returncode == 1
    line = config.line_of(config.ini.read_text(), "path =")
    assert ferryd.output_lines(bad)[0].startswith(
        f"{config.ini}:{line}: [event-handlers/audit] path: cannot write the log file"
    )
