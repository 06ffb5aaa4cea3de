"""Editing documents: every edit touches only the lines it must."""

from __future__ import annotations

import difflib

import pytest

from ferryd.ini import Document

BASE = """\
# ferryd configuration
[server]
uuid = single-server-uuid
Name: ferryd-test
path   =  /var/lib/ferryd
permissions = allow-full-control
    /outbox, allow-read
; trailing comment of server

[accounts/acme]
name = acme
enabled = yes
"""


def diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """Lines removed from and added to ``before``, with their line endings."""
    lines = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    removed, added = [], []
    for line in lines:
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def edited(text: str, section: str, option: str, value: str) -> str:
    doc = Document.parse(text)
    doc.set(section, option, value)
    return doc.render()


# -- changing an existing option --------------------------------------------


def test_set_changes_exactly_one_line_with_equals_delimiter() -> None:
    after = edited(BASE, "server", "uuid", "other")
    assert diff(BASE, after) == (["uuid = single-server-uuid\n"], ["uuid = other\n"])


def test_set_keeps_colon_delimiter_and_original_name_spelling() -> None:
    after = edited(BASE, "server", "name", "renamed")
    assert diff(BASE, after) == (["Name: ferryd-test\n"], ["Name: renamed\n"])


def test_set_keeps_odd_spacing_around_delimiter() -> None:
    after = edited(BASE, "server", "PATH", "/srv")
    assert diff(BASE, after) == (["path   =  /var/lib/ferryd\n"], ["path   =  /srv\n"])


def test_set_without_spaces_keeps_none() -> None:
    text = "[s]\nenabled:yes\nother=1\n"
    assert edited(text, "s", "enabled", "no") == "[s]\nenabled:no\nother=1\n"


def test_set_empty_value_renders_name_and_delimiter_only() -> None:
    after = edited(BASE, "server", "path", "")
    assert diff(BASE, after) == (["path   =  /var/lib/ferryd\n"], ["path   =\n"])
    found = Document.parse(after).get("server", "path")
    assert found is not None and found.value == ""


def test_set_on_empty_value_keeps_spacing_after_delimiter() -> None:
    assert edited("[s]\na =  \n", "s", "a", "x") == "[s]\na =  x\n"


def test_set_replaces_all_continuation_lines_of_a_multi_line_value() -> None:
    after = edited(BASE, "server", "permissions", "deny-full-control")
    removed, added = diff(BASE, after)
    assert removed == ["permissions = allow-full-control\n", "    /outbox, allow-read\n"]
    assert added == ["permissions = deny-full-control\n"]


def test_set_multi_line_value_indents_further_lines() -> None:
    after = edited("[s]\na = 1\nb = 2\n", "s", "a", "x\ny\nz")
    assert after == "[s]\na = x\n    y\n    z\nb = 2\n"
    assert Document.parse(after).as_dict() == {"s": {"a": "x\ny\nz", "b": "2"}}


def test_set_multi_line_value_reuses_existing_continuation_indent() -> None:
    after = edited("[s]\na = 1\n\t2\n", "s", "a", "x\ny")
    assert after == "[s]\na = x\n\ty\n"


def test_set_multi_line_value_on_empty_inline_part() -> None:
    after = edited("[s]\nlist =\n    a\n    b\n", "s", "list", "c\nd")
    assert after == "[s]\nlist = c\n    d\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [("a =", "a = x"), ("a:", "a: x"), ("a=", "a=x"), ("a\t:", "a\t:\tx"), ("a =\t", "a =\tx")],
)
def test_set_on_bare_empty_option_mirrors_spacing_before_delimiter(
    line: str, expected: str
) -> None:
    assert edited(f"[s]\n{line}\n", "s", "a", "x") == f"[s]\n{expected}\n"


def test_set_drops_leading_newlines_of_value() -> None:
    doc = Document.parse("[s]\na = 1\n")
    doc.set("s", "a", "\nx\ny")
    assert doc.render() == "[s]\na = x\n    y\n"
    found = doc.get("s", "a")
    assert found is not None and found.value == "x\ny"


def test_set_on_crlf_file_keeps_crlf() -> None:
    text = BASE.replace("\n", "\r\n")
    after = edited(text, "server", "permissions", "a\nb")
    assert after.count("\r\n") == after.count("\n")
    assert "permissions = a\r\n    b\r\n; trailing" in after
    assert Document.parse(after).get("server", "permissions") is not None


def test_set_keeps_line_ending_of_the_changed_line_in_mixed_file() -> None:
    text = "[s]\r\na = 1\nb = 2\r\n"
    assert edited(text, "s", "a", "x") == "[s]\r\na = x\nb = 2\r\n"


def test_set_last_option_without_final_newline_keeps_it_missing() -> None:
    assert edited("[s]\na = 1", "s", "a", "x\ny") == "[s]\na = x\n    y"


# -- adding -----------------------------------------------------------------


def test_set_new_option_goes_after_last_option_before_trailing_comments() -> None:
    after = edited(BASE, "server", "max_sessions", "10")
    removed, added = diff(BASE, after)
    assert (removed, added) == ([], ["max_sessions = 10\n"])
    lines = after.splitlines()
    assert lines[lines.index("max_sessions = 10") - 1] == "    /outbox, allow-read"
    assert lines[lines.index("max_sessions = 10") + 1] == "; trailing comment of server"


def test_set_new_option_in_section_without_options_goes_after_header() -> None:
    after = edited("[a]\n; note\n\n[b]\n", "a", "x", "1")
    assert after == "[a]\nx = 1\n; note\n\n[b]\n"


def test_set_new_option_uses_dominant_line_ending() -> None:
    after = edited("[s]\r\na = 1\r\n", "s", "b", "2\n3")
    assert after == "[s]\r\na = 1\r\nb = 2\r\n    3\r\n"


def test_set_new_option_at_end_without_final_newline() -> None:
    assert edited("[s]\na = 1", "s", "b", "2") == "[s]\na = 1\nb = 2"


def test_set_new_empty_option_renders_without_trailing_space() -> None:
    assert edited("[s]\n", "s", "flag", "") == "[s]\nflag =\n"


def test_set_new_option_line_numbers_are_updated() -> None:
    doc = Document.parse("[a]\nx = 1\n[b]\ny = 2\n")
    doc.set("a", "z", "3\n4")
    assert [(o.name, o.line) for o in doc.options("b")] == [("y", 6)]
    assert doc.section_line("b") == 5


def test_set_on_missing_section_creates_it_at_end_after_a_blank_line() -> None:
    after = edited(BASE, "services/new", "type", "sftp")
    assert after == BASE + "\n[services/new]\ntype = sftp\n"


def test_new_section_does_not_add_second_blank_line() -> None:
    doc = Document.parse("[a]\nx = 1\n\n")
    doc.add_section("b")
    assert doc.render() == "[a]\nx = 1\n\n[b]\n"


def test_add_section_to_empty_document_has_no_leading_blank_line() -> None:
    doc = Document.parse("")
    doc.add_section("server")
    assert doc.render() == "[server]\n"


def test_add_section_to_crlf_file_without_final_newline() -> None:
    doc = Document.parse("[a]\r\nx = 1")
    doc.add_section("b")
    assert doc.render() == "[a]\r\nx = 1\r\n\r\n[b]"
    assert doc.sections() == ["a", "b"]


def test_add_existing_section_is_value_error() -> None:
    doc = Document.parse("[a]\n")
    with pytest.raises(ValueError, match="already exists"):
        doc.add_section("a")


# -- removing ---------------------------------------------------------------


def test_remove_option_removes_its_continuation_lines() -> None:
    doc = Document.parse(BASE)
    assert doc.remove_option("server", "PERMISSIONS")
    removed, added = diff(BASE, doc.render())
    assert removed == ["permissions = allow-full-control\n", "    /outbox, allow-read\n"]
    assert added == []
    assert doc.get("server", "permissions") is None


def test_remove_missing_option_or_section_returns_false() -> None:
    doc = Document.parse(BASE)
    assert not doc.remove_option("server", "nope")
    assert not doc.remove_option("nope", "name")
    assert not doc.remove_section("nope")
    assert doc.render() == BASE


def test_remove_section_removes_everything_up_to_next_header() -> None:
    doc = Document.parse(BASE)
    assert doc.remove_section("server")
    assert doc.render() == "# ferryd configuration\n[accounts/acme]\nname = acme\nenabled = yes\n"
    assert doc.section_line("accounts/acme") == 2
    assert [(o.name, o.line) for o in doc.options("accounts/acme")] == [
        ("name", 3),
        ("enabled", 4),
    ]


def test_remove_last_section_keeps_missing_final_newline() -> None:
    doc = Document.parse("[a]\nx = 1\n[b]\ny = 2")
    doc.remove_section("b")
    assert doc.render() == "[a]\nx = 1"


# -- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a\r\nb", "a\n\nb", "a\n  \nb", " a", "a ", "a\n b", "a\nb ", "a\n;b", "a\n#b", "a\n"],
)
def test_set_refuses_values_that_could_not_be_read_back(value: str) -> None:
    doc = Document.parse(BASE)
    with pytest.raises(ValueError):
        doc.set("server", "uuid", value)
    assert doc.render() == BASE


def test_set_accepts_comment_characters_on_first_line() -> None:
    after = edited("[s]\na = 1\n", "s", "a", "; x # y\nz")
    assert Document.parse(after).as_dict() == {"s": {"a": "; x # y\nz"}}


@pytest.mark.parametrize("name", ["", "a=b", "a:b", "a\nb", "[a", ";a", "#a", " a", "a "])
def test_set_refuses_bad_option_names(name: str) -> None:
    with pytest.raises(ValueError):
        Document.parse("[s]\n").set("s", name, "x")


@pytest.mark.parametrize("name", ["", "a]b", "a\nb", "a\rb"])
def test_bad_section_names_are_refused(name: str) -> None:
    doc = Document.parse("")
    with pytest.raises(ValueError):
        doc.add_section(name)
    with pytest.raises(ValueError):
        doc.set(name, "a", "b")
    assert doc.render() == ""


# -- from_dict --------------------------------------------------------------


def test_from_dict_renders_plain_lines_with_blank_line_between_sections() -> None:
    doc = Document.from_dict({"server": {"uuid": "u", "list": "a\nb"}, "accounts/x": {"e": ""}})
    assert doc.render() == "[server]\nuuid = u\nlist = a\n    b\n\n[accounts/x]\ne =\n"


def test_from_dict_refuses_options_differing_only_in_case() -> None:
    with pytest.raises(ValueError, match="case-insensitive"):
        Document.from_dict({"s": {"Name": "a", "name": "b"}})
