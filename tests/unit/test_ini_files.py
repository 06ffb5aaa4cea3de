"""Reading configuration files and replacing them atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ferryd.ini import (
    Document,
    IniError,
    IniFileError,
    IniSyntaxError,
    read_document,
    write_atomic,
    write_document,
)

TEXT = "# comment\r\n[server]\r\nname = ferryd\r\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_read_document_keeps_crlf_and_remembers_path(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_bytes(TEXT.encode())
    doc = read_document(path)
    assert doc.render() == TEXT
    assert doc.path == str(path)


def test_read_document_keeps_bom(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_bytes(b"\xef\xbb\xbf[s]\na = 1\n")
    doc = read_document(path)
    assert doc.sections() == ["s"]
    assert doc.render().encode() == path.read_bytes()


def test_read_document_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_text("[s]\n  stray\n")
    with pytest.raises(IniSyntaxError) as info:
        read_document(path)
    assert str(info.value).startswith(f"{path}:2: ")


def test_read_missing_file_is_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.ini"
    with pytest.raises(IniFileError) as info:
        read_document(path)
    assert str(info.value) == f"{path}: cannot read: No such file or directory"
    assert isinstance(info.value, IniError)


def test_read_directory_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IniFileError) as info:
        read_document(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_read_non_utf8_names_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ini"
    path.write_bytes(b"[s]\nname = caf\xe9\n")
    with pytest.raises(IniSyntaxError) as info:
        read_document(path)
    assert str(info.value) == f"{path}:2: not valid UTF-8 at byte 14"


def test_write_atomic_replaces_content_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_text("old\n")
    path.chmod(0o640)
    write_atomic(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert mode(path) == 0o640


def test_write_atomic_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    write_atomic(str(path), "[s]\n")
    assert path.read_text() == "[s]\n"
    assert mode(path) == 0o600


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_text("old\n")
    write_atomic(path, "new\n")
    write_atomic(path, "newer\n")
    assert os.listdir(tmp_path) == ["server.ini"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_write_atomic_keeps_owner_when_root(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_text("old\n")
    os.chown(path, 1234, 4321)
    write_atomic(path, "new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (1234, 4321)


def test_write_atomic_writes_through_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.ini"
    real.write_text("old\n")
    link = tmp_path / "link.ini"
    link.symlink_to(real)
    write_atomic(link, "new\n")
    assert link.is_symlink()
    assert real.read_text() == "new\n"


def test_write_atomic_into_missing_folder_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "server.ini"
    with pytest.raises(IniFileError) as info:
        write_atomic(path, "x\n")
    assert str(info.value) == f"{path}: cannot write: No such file or directory"


def test_write_atomic_failure_keeps_original_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server.ini"
    path.write_text("original\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(IniFileError) as info:
        write_atomic(path, "new\n")
    assert str(info.value) == f"{path}: cannot write: No space left on device"
    assert path.read_text() == "original\n"
    assert os.listdir(tmp_path) == ["server.ini"]


def test_write_atomic_refuses_unencodable_text(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    with pytest.raises(IniFileError, match="cannot encode as UTF-8"):
        write_atomic(path, "bad \udce9\n")
    assert not path.exists()


def test_write_document_round_trips_edits(tmp_path: Path) -> None:
    path = tmp_path / "server.ini"
    path.write_bytes(TEXT.encode())
    doc = read_document(path)
    doc.set("server", "name", "renamed")
    write_document(path, doc)
    assert path.read_bytes() == TEXT.replace("ferryd", "renamed").encode()
    assert read_document(path).as_dict() == {"server": {"name": "renamed"}}


def test_write_document_of_new_document(tmp_path: Path) -> None:
    path = tmp_path / "new.ini"
    write_document(path, Document.from_dict({"server": {"uuid": "u"}}))
    assert path.read_text() == "[server]\nuuid = u\n"
