"""Plain-text passwords stored as hashes, and what happens when the file cannot be rewritten."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ferryd.auth.passwords import verify_password
from ferryd.auth.plain_passwords import hash_plain_passwords
from ferryd.config.loader import load_configuration
from ferryd.config.problems import ConfigurationError

WriteIni = Callable[..., Path]
ACCOUNT = """
[accounts/acme]
name = acme
password = typed by hand
"""


def test_the_plain_text_is_replaced_by_its_hash_on_its_line(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini(ACCOUNT)
    hashed = hash_plain_passwords(load_configuration(config_dir))
    text = path.read_text()
    assert "typed by hand" not in text
    assert [(h.account_name, h.path) for h in hashed] == [("acme", str(path))]
    found = load_configuration(config_dir).account_named("acme")
    assert found is not None and verify_password(found[1].password, "typed by hand")


def test_a_file_that_cannot_be_rewritten_is_a_problem_at_the_password_line(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini(ACCOUNT)
    line = path.read_text().splitlines().index("password = typed by hand") + 1
    configuration = load_configuration(config_dir)
    path.unlink()
    path.mkdir()  # as a read-only mount would, writing the file fails
    with pytest.raises(ConfigurationError) as caught:
        hash_plain_passwords(configuration, " (or set something)")
    (problem,) = caught.value.problems
    assert (problem.path, problem.section, problem.option) == (
        str(path),
        "accounts/acme",
        "password",
    )
    assert problem.line == line
    assert "cannot store the hash of the plain-text password" in problem.message
    assert problem.message.endswith("store a hash there instead (or set something)")
