"""Several writers sharing one configuration file: the lock, compare-before-write, and
plain-text password hashing by nodes starting at the same time. Real files, real processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import stat
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from ferryd.auth.passwords import verify_password
from ferryd.auth.plain_passwords import hash_plain_passwords
from ferryd.config.loader import load_configuration
from ferryd.ini import (
    Document,
    IniFileError,
    LockTimeoutError,
    StaleWriteError,
    current_version,
    edit_locked,
    lock_path,
    locked,
    read_document,
    read_versioned,
    save_if_unchanged,
)

WriteIni = Callable[..., Path]
FORK = multiprocessing.get_context("fork")  # children inherit the imported modules: fast
TEXT = "# shared by every node\n[server]\nname = ferryd\n\n[counter]\nvalue = 0\n"
STALE = (
    "changed on disk since it was read (another node or an administrator saved it); "
    "read it again and redo the change"
)


@pytest.fixture
def ini(tmp_path: Path) -> Path:
    path = tmp_path / "server.ini"
    path.write_text(TEXT)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- compare-before-write ---------------------------------------------------------------------


def test_the_version_is_the_sha256_of_the_bytes_read(ini: Path) -> None:
    document, version = read_versioned(ini)
    assert document.render() == TEXT
    assert version == sha256(ini) == current_version(ini)
    assert current_version(ini.with_name("missing.ini")) is None


def test_a_save_based_on_an_older_version_is_refused_and_the_file_left_as_it_is(
    ini: Path,
) -> None:
    _, ours = read_versioned(ini)
    ini.write_text(TEXT.replace("ferryd", "saved by another node"))
    on_disk = ini.read_bytes()

    with pytest.raises(StaleWriteError) as caught:
        save_if_unchanged(ini, TEXT.replace("ferryd", "ours"), ours)

    assert str(caught.value) == f"{ini}: {STALE}"
    assert isinstance(caught.value, IniFileError)
    assert ini.read_bytes() == on_disk
    again = pickle.loads(pickle.dumps(caught.value))  # it may cross a process boundary
    assert str(again) == str(caught.value)


def test_a_save_based_on_the_current_version_is_written_and_returns_the_new_version(
    ini: Path,
) -> None:
    document, version = read_versioned(ini)
    document.set("server", "name", "renamed")

    new = save_if_unchanged(ini, document.render(), version)

    assert ini.read_text() == TEXT.replace("name = ferryd", "name = renamed")
    assert new == sha256(ini) != version
    with pytest.raises(StaleWriteError):  # the old version is now stale
        save_if_unchanged(ini, TEXT, version)
    assert save_if_unchanged(ini, TEXT, new) == version


def test_a_new_file_is_saved_only_if_still_missing(tmp_path: Path) -> None:
    path = tmp_path / "accounts.ini"
    assert save_if_unchanged(path, "[a]\n", None) == hashlib.sha256(b"[a]\n").hexdigest()
    with pytest.raises(StaleWriteError, match="was created since it was found missing"):
        save_if_unchanged(path, "[b]\n", None)
    assert path.read_text() == "[a]\n"


def test_an_edit_that_changes_nothing_does_not_rewrite_the_file(ini: Path) -> None:
    before = ini.stat()
    version = edit_locked(ini, lambda document: False)
    assert version == sha256(ini)
    assert ini.stat().st_ino == before.st_ino and ini.stat().st_mtime_ns == before.st_mtime_ns


# -- the lock ---------------------------------------------------------------------------------


def test_the_lock_file_is_hidden_private_and_kept(ini: Path) -> None:
    previous = os.umask(0o022)
    try:
        with locked(ini):
            pass
    finally:
        os.umask(previous)
    lock = ini.with_name(".server.ini.lock")
    assert lock_path(ini) == str(lock)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert sorted(p.name for p in ini.parent.iterdir()) == [".server.ini.lock", "server.ini"]


def test_a_symbolic_link_shares_the_lock_of_its_target(ini: Path, tmp_path: Path) -> None:
    link = tmp_path / "elsewhere" / "server.ini"
    link.parent.mkdir()
    link.symlink_to(ini)
    assert lock_path(link) == lock_path(ini)


def _hold_lock(path: Path, held: Event, release: Event) -> None:
    with locked(path):
        held.set()
        release.wait(10)


def test_while_another_process_holds_the_lock_a_writer_times_out_then_succeeds(
    ini: Path,
) -> None:
    held, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold_lock, args=(ini, held, release))
    holder.start()
    try:
        assert held.wait(5)
        _, version = read_versioned(ini)
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            save_if_unchanged(ini, "[changed]\n", version, timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 2
        assert str(caught.value) == (
            f"{ini}: another writer holds the lock .server.ini.lock (waited 0.2 s); "
            "try again once it has finished"
        )
        assert ini.read_text() == TEXT
    finally:
        release.set()
        holder.join(5)
    assert holder.exitcode == 0
    save_if_unchanged(ini, "[changed]\n", version, timeout=2)
    assert ini.read_text() == "[changed]\n"


def test_threads_of_one_process_exclude_each_other(ini: Path) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with locked(ini):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        with pytest.raises(LockTimeoutError):
            edit_locked(ini, lambda document: True, timeout=0.1)
    finally:
        release.set()
        holder.join(5)
    edit_locked(ini, lambda document: True, timeout=2)


# -- many writers -----------------------------------------------------------------------------


def _increment(document: Document) -> bool:
    found = document.get("counter", "value")
    assert found is not None
    document.set("counter", "value", str(int(found.value) + 1))
    return True


def _count(path: Path, start: Barrier, times: int) -> None:
    start.wait(10)
    for _ in range(times):
        edit_locked(path, _increment)


def test_concurrent_read_modify_writes_lose_no_update_and_never_tear_the_file(
    ini: Path,
) -> None:
    writers, times = 8, 20
    start = FORK.Barrier(writers + 1)
    processes = [FORK.Process(target=_count, args=(ini, start, times)) for _ in range(writers)]
    for process in processes:
        process.start()
    start.wait(10)
    seen = [0]
    while any(process.is_alive() for process in processes):
        document, _ = read_versioned(ini)  # a torn file would fail to parse here
        found = document.get("counter", "value")
        assert found is not None and document.get("server", "name") is not None
        assert int(found.value) >= seen[-1]
        seen.append(int(found.value))
    for process in processes:
        process.join(10)
        assert process.exitcode == 0
    assert read_document(ini).render() == TEXT.replace("value = 0", f"value = {writers * times}")


# -- plain-text passwords ---------------------------------------------------------------------

ACCOUNT = """
[accounts/acme]
name = acme
password = typed by hand
"""


def test_a_password_another_node_hashed_meanwhile_is_left_alone_and_not_reported(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini(ACCOUNT)
    configuration = load_configuration(config_dir)  # still holds the plain text
    hash_plain_passwords(load_configuration(config_dir))  # the other node, a moment earlier
    written = path.read_bytes()

    assert hash_plain_passwords(configuration) == []
    assert path.read_bytes() == written


def _hash_at_once(config_dir: Path, start: Barrier, results: Connection) -> None:
    configuration = load_configuration(config_dir)
    start.wait(10)
    hashed = hash_plain_passwords(configuration)
    stored = read_document(config_dir / "server.ini").get("accounts/acme", "password")
    assert stored is not None
    results.send((len(hashed), stored.value))


def test_two_nodes_hashing_the_same_file_at_once_store_one_hash_that_logs_in(
    write_ini: WriteIni, config_dir: Path
) -> None:
    path = write_ini(ACCOUNT)
    original = path.read_text()
    start = FORK.Barrier(2)
    pipes = [FORK.Pipe(duplex=False) for _ in range(2)]
    nodes = [
        FORK.Process(target=_hash_at_once, args=(config_dir, start, sender)) for _, sender in pipes
    ]
    for node in nodes:
        node.start()
    results: list[tuple[int, str]] = [receiver.recv() for receiver, _ in pipes if receiver.poll(10)]
    for node in nodes:
        node.join(5)
        assert node.exitcode == 0
    assert len(results) == 2, "a node failed"

    reporting = [stored for count, stored in results if count == 1]
    assert sorted(count for count, _ in results) == [0, 1], results
    final = read_document(path).get("accounts/acme", "password")
    assert final is not None and final.value.startswith("$argon2id$")
    assert reporting == [final.value]  # written once: the other node did not rewrite it
    assert verify_password(final.value, "typed by hand")
    assert path.read_text() == original.replace("typed by hand", final.value)
