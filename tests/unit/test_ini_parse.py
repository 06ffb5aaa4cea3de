"""Parsing the SFTPPlus-style INI dialect: syntax rules, values, line numbers, errors."""

from __future__ import annotations

import pickle

import pytest

from ferryd.ini import Document, IniError, IniSyntaxError, OptionValue

REFERENCE = """\
# ferryd configuration
[server]
uuid = single-server-uuid
name: ferryd-test
authentications = DEFAULT-AUTHENTICATION

[event-handlers/DEFAULT-FILE]
enabled: Yes
type = local-file
name = Server log
path = log/server-{host.name}.log
rotate_on = 1 day-of-month
rotate_count = 0
entry_content = {timestamp.iso_8601_local} {id} {component.uuid} {account.name} \
{account.peer.address}:{account.peer.port} {message}

; the application accounts
[groups/DEFAULT_GROUP]
name = DEFAULT_GROUP
home_folder_path = /srv/storage/${USER}
permissions = allow-full-control
    /outbox, allow-read, allow-list
    m/\\.exe$/, deny-full-control

[accounts/7d1c5a0e-acme]
name = acme
enabled = yes
group = DEFAULT_GROUP
password = $6$rounds=80000$SALT$HASH
headers = "Keep-Alive: timeout=5, max=100", X-Test: 1
"""


def syntax_error(text: str, path: str | None = "test.ini") -> IniSyntaxError:
    with pytest.raises(IniSyntaxError) as info:
        Document.parse(text, path)
    return info.value


# -- round trips ------------------------------------------------------------


def test_reference_file_round_trips_byte_for_byte() -> None:
    assert Document.parse(REFERENCE).render() == REFERENCE


def test_reference_file_with_crlf_round_trips_byte_for_byte() -> None:
    text = REFERENCE.replace("\n", "\r\n")
    assert Document.parse(text).render() == text


def test_reference_file_without_final_newline_round_trips_byte_for_byte() -> None:
    text = REFERENCE.rstrip("\n")
    assert Document.parse(text).render() == text


def test_mixed_line_endings_tabs_and_trailing_whitespace_round_trip() -> None:
    text = "[a]  \r\nx\t=\ty \t\n\n\t; indented comment \r\n  \t\n[b]\t\nz:1"
    assert Document.parse(text).render() == text


def test_utf8_bom_is_kept_and_not_part_of_the_first_header() -> None:
    text = "\ufeff[server]\nname = x\n"
    doc = Document.parse(text)
    assert doc.sections() == ["server"]
    assert doc.render() == text


def test_empty_text_is_an_empty_document() -> None:
    doc = Document.parse("")
    assert doc.sections() == []
    assert doc.render() == ""


# -- values -----------------------------------------------------------------


def test_reference_file_values() -> None:
    doc = Document.parse(REFERENCE)
    assert doc.sections() == [
        "server",
        "event-handlers/DEFAULT-FILE",
        "groups/DEFAULT_GROUP",
        "accounts/7d1c5a0e-acme",
    ]
    assert doc.as_dict()["server"] == {
        "uuid": "single-server-uuid",
        "name": "ferryd-test",
        "authentications": "DEFAULT-AUTHENTICATION",
    }
    permissions = doc.get("groups/DEFAULT_GROUP", "permissions")
    assert permissions is not None
    assert permissions.value == (
        "allow-full-control\n/outbox, allow-read, allow-list\nm/\\.exe$/, deny-full-control"
    )
    password = doc.get("accounts/7d1c5a0e-acme", "password")
    assert password is not None and password.value == "$6$rounds=80000$SALT$HASH"
    headers = doc.get("accounts/7d1c5a0e-acme", "headers")
    assert headers is not None
    assert headers.value == '"Keep-Alive: timeout=5, max=100", X-Test: 1'


def test_option_value_carries_lower_case_name_line_and_section() -> None:
    doc = Document.parse(REFERENCE)
    assert doc.get("event-handlers/DEFAULT-FILE", "ENABLED") == OptionValue(
        name="enabled", value="Yes", line=8, section="event-handlers/DEFAULT-FILE"
    )


def test_options_are_listed_in_file_order_with_line_numbers() -> None:
    doc = Document.parse(REFERENCE)
    assert [(o.name, o.line) for o in doc.options("groups/DEFAULT_GROUP")] == [
        ("name", 18),
        ("home_folder_path", 19),
        ("permissions", 20),
    ]


def test_section_line_is_the_header_line() -> None:
    doc = Document.parse(REFERENCE)
    assert doc.section_line("server") == 2
    assert doc.section_line("accounts/7d1c5a0e-acme") == 24


def test_section_line_of_missing_section_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Document.parse(REFERENCE).section_line("nope")


def test_options_of_missing_section_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Document.parse(REFERENCE).options("nope")


def test_first_delimiter_wins_whichever_it_is() -> None:
    doc = Document.parse("[s]\na = b: c\nd: e = f\nurl = http://x:80/?q=1\n")
    assert doc.as_dict()["s"] == {"a": "b: c", "d": "e = f", "url": "http://x:80/?q=1"}


def test_name_and_value_are_stripped() -> None:
    doc = Document.parse("[s]\nname \t =   spaced value \t\n")
    assert doc.as_dict()["s"] == {"name": "spaced value"}


def test_empty_value_is_present_and_distinct_from_missing() -> None:
    doc = Document.parse("[s]\nempty =\ncolon:\n")
    empty = doc.get("s", "empty")
    assert empty is not None and empty.value == ""
    colon = doc.get("s", "colon")
    assert colon is not None and colon.value == ""
    assert doc.get("s", "missing") is None


def test_get_in_missing_section_is_none() -> None:
    assert Document.parse("[s]\na = 1\n").get("other", "a") is None


def test_option_lookup_is_case_insensitive_and_spelling_is_kept() -> None:
    text = "[s]\nHomeFolder = /srv\n"
    doc = Document.parse(text)
    for spelling in ("homefolder", "HOMEFOLDER", "HomeFolder"):
        found = doc.get("s", spelling)
        assert found is not None and found.value == "/srv"
    assert doc.as_dict() == {"s": {"homefolder": "/srv"}}
    assert doc.render() == text


def test_section_names_are_case_sensitive() -> None:
    doc = Document.parse("[Server]\na = 1\n[server]\na = 2\n")
    assert doc.sections() == ["Server", "server"]
    assert not doc.has_section("SERVER")
    assert doc.has_section("Server")


def test_section_names_are_not_interpreted() -> None:
    doc = Document.parse("[services/1b2c] \t\n[a b: c = d]\n[ spaced ]\n")
    assert doc.sections() == ["services/1b2c", "a b: c = d", " spaced "]


def test_comment_characters_inside_values_are_literal() -> None:
    doc = Document.parse("[s]\na = x ; not a comment # nor this\nb = ;starts\n")
    assert doc.as_dict()["s"] == {"a": "x ; not a comment # nor this", "b": ";starts"}


def test_comment_lines_anywhere_including_indented_are_ignored() -> None:
    text = "# top\n; top\n[s]\n  ; indented\n\t# tab\na = 1\n    ; after\n"
    assert Document.parse(text).as_dict() == {"s": {"a": "1"}}


def test_continuation_lines_are_stripped_and_joined_with_newlines() -> None:
    doc = Document.parse("[s]\na = first\n    second  \n\tthird\n")
    assert doc.as_dict()["s"] == {"a": "first\nsecond\nthird"}


def test_continuation_after_empty_inline_part_has_no_leading_newline() -> None:
    doc = Document.parse("[s]\nlist =\n    one\n    two\n")
    assert doc.as_dict()["s"] == {"list": "one\ntwo"}


def test_blank_line_ends_a_multi_line_value() -> None:
    doc = Document.parse("[s]\na = one\n    two\n\nb = three\n")
    assert doc.as_dict()["s"] == {"a": "one\ntwo", "b": "three"}


def test_indented_text_looking_like_option_or_header_is_a_continuation() -> None:
    doc = Document.parse("[s]\na = one\n    b = two\n    [c]\n")
    assert doc.as_dict()["s"] == {"a": "one\nb = two\n[c]"}


def test_line_numbers_count_continuation_and_crlf_lines() -> None:
    doc = Document.parse("[s]\r\na = 1\r\n  2\r\n\r\nb = 3\r\n")
    assert [(o.name, o.line) for o in doc.options("s")] == [("a", 2), ("b", 5)]


# -- errors -----------------------------------------------------------------


def test_option_before_any_section_is_error_with_line_number() -> None:
    err = syntax_error("# comment\n\nname = x\n[s]\n")
    assert err.line == 3
    assert str(err) == "test.ini:3: option 'name' appears before any [section] header"


def test_continuation_line_without_option_is_error_with_line_number() -> None:
    err = syntax_error("[s]\n    stray\n")
    assert (err.path, err.line) == ("test.ini", 2)
    assert "indented line without an option" in err.message


def test_continuation_line_first_in_file_is_error() -> None:
    assert syntax_error("  stray\n[s]\n").line == 1


def test_continuation_after_blank_line_is_error() -> None:
    assert syntax_error("[s]\na = 1\n\n    2\n").line == 4


def test_continuation_after_comment_is_error() -> None:
    assert syntax_error("[s]\na = 1\n; note\n    2\n").line == 4


def test_line_without_delimiter_is_error_with_exact_message() -> None:
    err = syntax_error("[s]\na = 1\njusttext\n")
    assert str(err) == "test.ini:3: expected 'name = value', a [section] header or a comment"


def test_empty_option_name_is_error() -> None:
    err = syntax_error("[s]\n= value\n")
    assert err.line == 2
    assert "empty option name" in err.message


def test_malformed_section_headers_are_errors() -> None:
    for header in ("[]", "[s", "[s] extra", "[a]b]", "[s] ; comment"):
        err = syntax_error(f"# x\n{header}\n")
        assert err.line == 2, header
        assert err.message == "invalid section header, expected '[name]'"


def test_duplicate_section_names_both_lines() -> None:
    err = syntax_error("[s]\na = 1\n\n[t]\n[s]\n")
    assert err.line == 5
    assert str(err) == "test.ini:5: duplicate section [s], first defined at line 1"


def test_duplicate_option_is_case_insensitive_and_names_both_lines() -> None:
    err = syntax_error("[s]\nName = 1\n  more\nNAME = 2\n")
    assert err.line == 4
    assert err.message == "duplicate option 'NAME' in [s], first defined at line 2"


def test_same_option_in_different_sections_is_fine() -> None:
    doc = Document.parse("[a]\nname = 1\n[b]\nname = 2\n")
    assert doc.as_dict() == {"a": {"name": "1"}, "b": {"name": "2"}}


def test_error_without_path_says_string() -> None:
    err = syntax_error("oops\n", path=None)
    assert err.path is None
    assert str(err).startswith("<string>:1: ")


def test_error_line_numbers_count_crlf_lines_and_bom() -> None:
    assert syntax_error("\ufeff[s]\r\n\r\n  stray\r\n").line == 3


def test_syntax_error_is_an_ini_error_and_pickles() -> None:
    err = syntax_error("oops")
    assert isinstance(err, IniError)
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
