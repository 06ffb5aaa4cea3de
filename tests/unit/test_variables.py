"""``{variable}`` templates: validated at load time, rendered per event."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ferryd.config.variables import (
    EVENT_HINT,
    IDENTITY_HINT,
    TIMESTAMP_FORMATS,
    UnknownVariable,
    compile_template,
    event_allowed,
    format_timestamp,
    identity_allowed,
    render_entries,
    render_event,
    render_identity,
)
from ferryd.events.catalogue import definition
from ferryd.events.event import AccountRef, ComponentRef, Event, Peer, ServerRef, render_message

EVENT = Event(
    id="30011",
    groups=frozenset(["session"]),
    message="hello",
    server=ServerRef("srv-uuid", "srv", "node-7"),
    data={"file": {"path": "/in/a.txt", "size": 10}, "path": "/in/b.txt", "reason": "ok"},
    component=ComponentRef("sftp-1", "ssh", "SFTP"),
    account=AccountRef("acme", "a1", peer=Peer("192.0.2.9", 50022)),
    timestamp=1_700_000_000.25,
)


def render(text: str) -> str:
    return render_event(compile_template(text, event_allowed, EVENT_HINT), EVENT)


def test_event_fields_render() -> None:
    assert (
        render("{id} {account.name} {account.peer.address}:{account.peer.port} {message}")
        == "30011 acme 192.0.2.9:50022 hello"
    )
    assert render("{component.uuid} {server.name} {host.name}") == "sftp-1 srv node-7"


def test_names_are_case_insensitive() -> None:
    assert render("{ID} {Account.Name}") == "30011 acme"


def test_data_members_render_nested_and_by_short_name() -> None:
    assert (
        render("{data.file.path} {data.file.size} {path} {reason}") == "/in/a.txt 10 /in/b.txt ok"
    )


def test_short_names_must_be_declared_by_some_event() -> None:
    with pytest.raises(UnknownVariable):
        compile_template("{undeclared_member}", event_allowed, EVENT_HINT)


def test_data_json_and_line_breaks() -> None:
    assert json.loads(render("{data_json}")) == EVENT.data
    assert render("a{LF}b{CR}") == "a\nb\r"


def test_missing_values_render_as_dash() -> None:
    assert render("{data.nothing.here}") == "-"
    bare = Event("20001", frozenset(), "m", EVENT.server, {})
    template = compile_template("{account.name} {component.uuid}", event_allowed, EVENT_HINT)
    assert render_event(template, bare) == "- -"


def test_unknown_variables_are_refused_with_a_hint() -> None:
    for text in ["{acount.name}", "{timestamp.iso_9999}", "{account.peer.colour}", "{nosuch}"]:
        with pytest.raises(UnknownVariable, match="unknown variable"):
            compile_template(text, event_allowed, EVENT_HINT)


def test_braces_that_are_not_variables_stay_literal() -> None:
    assert render('{"id": "{id}"} { not a var }') == '{"id": "30011"} { not a var }'


def test_identity_templates_accept_only_identity_variables() -> None:
    template = compile_template(
        "log/{host.name}-{server.uuid}.log", identity_allowed, IDENTITY_HINT
    )
    rendered = render_identity(template, node="n1", server_uuid="u", server_name="s")
    assert rendered == "log/n1-u.log"
    with pytest.raises(UnknownVariable, match="paths may use"):
        compile_template("log/{account.name}.log", identity_allowed, IDENTITY_HINT)


def test_all_23_timestamp_formats_exist_and_render() -> None:
    assert len(TIMESTAMP_FORMATS) == 23
    moment = datetime(2026, 3, 4, 15, 6, 7, 89).timestamp()
    assert format_timestamp("year_decimal", moment) == "2026"
    assert format_timestamp("month_padded", moment) == "03"
    assert format_timestamp("month_decimal", moment) == "3"
    assert format_timestamp("hour_padded_12", moment) == "03"
    assert format_timestamp("hour_am_pm", moment) == "PM"
    assert format_timestamp("day_of_year_padded", moment) == "063"
    assert format_timestamp("cwa_14051", moment) == "2026-03-04 15:06:07"
    assert format_timestamp("iso_8601_local", moment).startswith("2026-03-04T15:06:07")
    assert format_timestamp("iso_8601_compact", 0) == "19700101T000000"
    assert format_timestamp("iso_8601", 0) == "1970-01-01T00:00:00Z"
    for name in TIMESTAMP_FORMATS:
        assert format_timestamp(name, moment)


def test_client_chosen_text_cannot_break_an_entry_into_forged_lines() -> None:
    forged = "x\n30068 admin uploaded /payroll.csv\x00\x1b[2K"
    event = Event(
        "30041",
        frozenset(),
        render_message(definition("30041"), {"path": forged, "operation": "open"}),
        EVENT.server,
        {"path": forged, "file": {"path": forged}},
        account=AccountRef(forged),
    )
    template = compile_template(
        "{message}|{path}|{file.path}|{account.name}{LF}", event_allowed, EVENT_HINT
    )
    entry = render_event(template, event)
    assert entry.count("\n") == 1 and entry.endswith("\n")
    assert "x\\x0a30068 admin uploaded /payroll.csv\\x00\\x1b[2K" in entry
    assert "\x00" not in entry and "\x1b" not in entry


def test_timestamps_made_once_a_second_still_follow_the_clock() -> None:
    """Whole-second formats are cached per second: the next second (or a time before the
    epoch) must never be served a neighbour's text."""
    base = datetime(2026, 3, 4, 15, 6, 7).timestamp()
    seen = [format_timestamp("cwa_14051", base + offset) for offset in (0.0, 0.99, 1.0, 61.5)]
    assert seen == [
        "2026-03-04 15:06:07",
        "2026-03-04 15:06:07",
        "2026-03-04 15:06:08",
        "2026-03-04 15:07:08",
    ]
    assert format_timestamp("iso_8601", -0.5) == "1969-12-31T23:59:59Z"
    # A moment that rounds up to the next microsecond is in the next second in every format.
    edge = 1_765_159_627.9999996
    assert format_timestamp("iso_8601_fractional", edge) == "2025-12-08T02:07:08.000000Z"
    assert format_timestamp("iso_8601", edge) == "2025-12-08T02:07:08Z"
    assert format_timestamp("iso_8601", -1.0000004) == "1969-12-31T23:59:59Z"
    assert format_timestamp("iso_8601", -1.5) == "1969-12-31T23:59:58Z"
    assert format_timestamp("iso_8601_fractional", 0.25) == "1970-01-01T00:00:00.250000Z"


def test_entries_end_each_event_with_one_line_break() -> None:
    """The file and console handlers write one line per event, whether the template ends
    with {LF} or not."""
    for text in ("{id} {account.name}", "{id} {account.name}{LF}"):
        template = compile_template(text, event_allowed, EVENT_HINT)
        assert render_entries(template, [EVENT, EVENT]) == "30011 acme\n30011 acme\n"
