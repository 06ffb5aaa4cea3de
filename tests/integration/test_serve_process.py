"""``ferryd serve`` as a subprocess: start-up, signals, reloads, and refused configurations.

Log lines are ``{id} {message}`` (see conftest.minimal_ini), so a line's first word is the
event id. Event ids used here: 20002 shutting down, 20010 configuration refused, 20012
restarted, 20156/20157 component started/stopped, 20181 ready, 20250 configuration applied,
20251 reload requested, 20254 log file reopened.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ferryd.auth.passwords import verify_password

if TYPE_CHECKING:
    from conftest import BadInput, ConfigFolder, Ferryd, LogFile, ServeProcess, SharedServer

REFUSED = "Configuration refused, the running configuration is kept: "


def hup_and_wait(process: ServeProcess, log: LogFile, event_id: str, containing: str = "") -> str:
    """Send SIGHUP and wait for one more ``event_id`` line in ``log``; return that line."""
    before = log.count(event_id, containing)
    process.hup()
    return process.wait_for_event(log, event_id, containing, count=before + 1)[-1]


# -- start-up and stopping ----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_runs_until_signalled_then_exits_0(
    ferryd: Ferryd, config: ConfigFolder, sig: signal.Signals
) -> None:
    process = ferryd.start(config)
    log = config.log()
    assert log.count("20001") == 1, "start-up events are missing from the first log file"
    assert process.is_running()

    status = process.stop(sig)

    assert status == 0, process.diagnostics()
    assert log.events("20002", f"({sig.name})"), log.lines()


def test_serve_on_an_empty_folder_initialises_it_prints_passwords_and_runs(
    ferryd: Ferryd, tmp_path: Path
) -> None:
    folder = tmp_path / "fresh"
    process = ferryd.serve(folder, "--node-name", "first-node")

    # init's default configuration logs to log/server-{host.name}.log
    log_path = folder / "log" / "server-first-node.log"
    process.wait_until(lambda: "20181" in _read(log_path), f"readiness in {log_path}")
    output = process.wait_until(
        lambda: "Demo account" in process.stdout() and process.stdout(),
        "the generated passwords on standard output while ferryd runs",
    )
    admin = re.search(r"^Administrator\s+admin / (\S+)$", output, re.MULTILINE)
    demo = re.search(r"^Demo account\s+demo / (\S+)$", output, re.MULTILINE)
    assert admin and demo, output

    ini = (folder / "server.ini").read_text(encoding="utf-8")
    hashes = re.findall(r"^password = (\S+)$", ini, re.MULTILINE)
    assert len(hashes) == 2
    assert verify_password(hashes[0], admin.group(1))
    assert verify_password(hashes[1], demo.group(1))
    assert process.is_running()
    assert process.stop() == 0


def test_a_state_database_that_cannot_be_opened_stops_the_start_naming_the_option(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    # server.ini is a regular file, so nothing can be created "under" it, even by root.
    text = config.minimal_ini().replace(
        "[server]\n", "[server]\nstate_database = server.ini/state.db3\n", 1
    )
    config.write(text)

    process = ferryd.serve(config)

    assert process.wait_exit() == 1, process.diagnostics()
    lines = [line for line in process.stderr().splitlines() if line.strip()]
    assert len(lines) == 1, process.diagnostics()
    assert lines[0].startswith(f"{config.ini}: [server] state_database: "), lines[0]
    assert f"cannot open {config.path / 'server.ini' / 'state.db3'}" in lines[0]


def test_a_pid_file_that_cannot_be_written_is_reported_and_the_node_runs(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    config.write(
        config.minimal_ini().replace("[server]\n", "[server]\npid_file = server.ini/x.pid\n", 1)
    )

    process = ferryd.start(config)

    line = process.wait_for_event(config.log(), "20266")[-1]
    pid_file = config.path / "server.ini" / "x.pid"
    assert line.startswith(f"20266 Cannot write the pid file {pid_file}: "), line
    assert line.removeprefix(f"20266 Cannot write the pid file {pid_file}: ").strip(), line
    assert process.is_running()
    assert process.stop() == 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize(
    ("args", "env_name", "expected"),
    [
        ([], "from-env", "from-env"),
        (["--node-name", "from-option"], "from-env", "from-option"),
    ],
    ids=["FERRYD_NODE_NAME-is-the-fallback", "--node-name-wins-over-FERRYD_NODE_NAME"],
)
def test_node_name_sets_host_name_in_the_log_path(
    ferryd: Ferryd,
    config: ConfigFolder,
    args: list[str],
    env_name: str,
    expected: str,
) -> None:
    config.write(config.minimal_ini(log_path="log/server-{host.name}.log"))
    log = config.log(f"log/server-{expected}.log")

    process = ferryd.start(
        config, *args, log=log, env=ferryd.environment(FERRYD_NODE_NAME=env_name)
    )

    assert log.events("20181", f"as node {expected} ")
    assert sorted(p.name for p in (config.path / "log").iterdir()) == [f"server-{expected}.log"]
    assert process.stop() == 0


# -- reloading on SIGHUP ------------------------------------------------------------------------


def test_sighup_applies_a_new_handler_then_keeps_it_when_a_broken_file_follows(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    """The issue's acceptance scenario, end to end."""
    process = ferryd.start(config)
    audit, second = config.log(), config.log("log/second.log")

    good = config.minimal_ini() + config.handler_section("second", "log/second.log")
    config.write(good)
    applied = hup_and_wait(process, audit, "20250")
    assert "1 started" in applied
    process.wait_for_event(second, "20250")  # the new handler writes

    broken = good.replace("path = log/second.log", "path = log/{host.nmae}.log")
    config.write(broken)
    refused = hup_and_wait(process, audit, "20010")
    line = config.line_of(broken, "path = log/{host.nmae}.log")
    assert (
        f"{REFUSED}{config.ini}:{line}: [event-handlers/second] path: unknown variable "
        "{host.nmae}" in refused
    )
    # Both handlers of the last good configuration still run and write where they did.
    process.wait_for_event(second, "20010")
    second_size = second.size()
    hup_and_wait(process, second, "20251")
    assert second.size() > second_size
    assert not list((config.path / "log").glob("*nmae*"))

    # Fixing the file is picked up by the next SIGHUP.
    config.write(good.replace("log/second.log", "log/second-fixed.log"))
    assert "1 reconfigured" in hup_and_wait(process, audit, "20250")
    process.wait_for_event(config.log("log/second-fixed.log"), "20250")  # writes there now
    assert process.stop() == 0


def test_sighup_with_unchanged_configuration_only_reopens_log_files(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    process = ferryd.start(config)
    log = config.log()

    hup_and_wait(process, log, "20254")

    assert log.count("20251") == 1
    assert log.count("20250") == 1, "an unchanged configuration was applied again"
    assert log.count("20010") == 0


@pytest.mark.parametrize("how", ["section-removed", "enabled-no"])
def test_sighup_stops_a_handler_that_is_removed_or_disabled(
    ferryd: Ferryd, config: ConfigFolder, how: str
) -> None:
    base = config.minimal_ini()
    config.write(base + config.handler_section("second", "log/second.log"))
    process = ferryd.start(config)
    audit, second = config.log(), config.log("log/second.log")
    process.wait_for_event(second, "20181")

    if how == "section-removed":
        config.write(base)
    else:
        config.write(base + config.handler_section("second", "log/second.log", "enabled = no"))
    stopped = hup_and_wait(process, audit, "20157", "event-handlers local-file second")
    assert stopped == "20157 event-handlers local-file second stopped."

    # The stopped handler's file no longer grows, while the other handler's does.
    size = second.size()
    hup_and_wait(process, audit, "20254")
    hup_and_wait(process, audit, "20254")
    assert second.size() == size
    assert process.stop() == 0
    assert second.size() == size


def test_sighup_changing_entry_content_changes_the_format_in_the_same_file(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    process = ferryd.start(config)
    log = config.log()
    inode = log.path.stat().st_ino
    before = log.path.read_text(encoding="utf-8")

    config.write(
        config.minimal_ini().replace(
            "entry_content = {id} {message}", "entry_content = NEW {id} {component.name}"
        )
    )
    applied = hup_and_wait(process, log, "NEW", "20250")

    assert applied.startswith("NEW 20250 -")
    assert log.path.stat().st_ino == inode, "the log file was replaced"
    assert log.path.read_text(encoding="utf-8").startswith(before), "earlier lines were lost"
    assert log.count("20012") == 0, "the handler was restarted instead of reconfigured"
    assert log.count("20157") == 0
    assert not any(line.startswith("NEW") for line in before.splitlines())
    # SIGHUP reopens first, so that what follows the signal lands in the new file: the
    # reopen is written before the reload's outcome (in whichever format the handler had
    # when it wrote the line).
    lines = log.lines()
    reopened = [i for i, line in enumerate(lines) if line.startswith(("20254 ", "NEW 20254 "))]
    outcome = [i for i, line in enumerate(lines) if line.startswith("NEW 20250 ")]
    assert len(reopened) == 1 and reopened[0] < outcome[0], lines


def test_sighup_reopens_log_files_even_when_the_new_configuration_is_refused(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    """logrotate moves the file away and sends SIGHUP: a typo in server.ini must not make
    ferryd keep writing to the moved file (the `rotate_external` docs: "SIGHUP always
    reopens the file")."""
    process = ferryd.start(config)
    log, rotated = config.log(), config.log("log/audit.log.1")
    log.path.rename(rotated.path)
    config.write(config.minimal_ini(handler_options="enabled = maybe"))

    process.hup()

    process.wait_until(
        lambda: log.events("20010") or rotated.events("20010"), "event 20010 in either file"
    )
    assert rotated.count("20010") == 0, "the refusal went to the file logrotate moved away"
    assert log.events("20010")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_sighup_keeps_the_old_handler_when_its_new_log_file_cannot_be_opened(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    """Nothing can be created in /proc. For a non-root user the check refuses the path (20010);
    root passes the permission check, so the new handler fails when it opens the file. Either
    way the last good configuration of the handler must keep writing."""
    base = config.minimal_ini()
    config.write(base + config.handler_section("second", "log/second.log"))
    process = ferryd.start(config)
    audit, second = config.log(), config.log("log/second.log")
    process.wait_for_event(second, "20181")

    config.write(base + config.handler_section("second", "/proc/ferryd-integration/second.log"))
    hup_and_wait(process, audit, "20251")
    hup_and_wait(process, audit, "20254")
    hup_and_wait(process, audit, "20254")

    process.wait_until(
        lambda: second.count("20251") >= 2,
        "the handler of the last good configuration to log the later reloads",
        timeout=3.0,
    )


# -- server.override.ini ------------------------------------------------------------------------


def test_override_file_replaces_single_options_and_adds_sections(
    ferryd: Ferryd, config: ConfigFolder
) -> None:
    config.write_override(
        "[event-handlers/audit]\npath = log/overridden.log\n"
        + config.handler_section("extra", "log/extra.log")
    )
    overridden, extra = config.log("log/overridden.log"), config.log("log/extra.log")

    process = ferryd.start(config, log=overridden)

    # entry_content still comes from server.ini: lines are "{id} {message}".
    assert overridden.events("20181")
    process.wait_for_event(extra, "20181")
    assert not config.log().path.exists(), "server.ini's path was used despite the override"

    config.write_override("[event-handlers/audit]\npath = log/overridden.log\n")
    hup_and_wait(process, overridden, "20157", "event-handlers local-file extra")
    assert process.stop() == 0


# -- refused configurations ---------------------------------------------------------------------


def test_serve_refuses_to_start_on_each_kind_of_bad_input(
    ferryd: Ferryd, config: ConfigFolder, bad_input: BadInput
) -> None:
    expected = bad_input.apply(config)

    process = ferryd.serve(config)
    status = process.wait_exit()

    assert status == 1, process.diagnostics()
    lines = [line for line in process.stderr().splitlines() if line.strip()]
    assert len(lines) == 1, process.diagnostics()
    assert lines[0].startswith(expected.prefix), f"{lines[0]!r} should start {expected.prefix!r}"
    assert expected.message in lines[0]
    assert not config.log().path.exists(), "a handler started although the file is refused"


def test_sighup_with_each_kind_of_bad_input_keeps_the_last_good_configuration(
    shared_server: SharedServer, bad_input: BadInput
) -> None:
    process, log = shared_server.process, shared_server.log
    assert process is not None
    applied = log.count("20250")
    expected = bad_input.apply(shared_server.config)

    refused = hup_and_wait(process, log, "20010")

    # The old handler wrote the refusal, in its old format, to its old file...
    assert refused.startswith(f"20010 {REFUSED}{expected.prefix}"), (
        f"{refused!r} should name {expected.prefix!r}"
    )
    assert expected.message in refused
    # ... and keeps handling events: the next reload request is logged too.
    hup_and_wait(process, log, "20251")
    assert process.is_running()
    assert log.count("20250") == applied, "a refused configuration was applied"
