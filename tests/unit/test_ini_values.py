"""Value converters: booleans, comma lists and line lists."""

from __future__ import annotations

import pytest

from ferryd.ini import format_csv, parse_bool, parse_csv, parse_lines


@pytest.mark.parametrize("text", ["yes", "YES", "true", "True", "y", "on", "ON", "1", "  yes \t"])
def test_parse_bool_true_spellings(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["no", "No", "false", "FALSE", "n", "off", "0", " off "])
def test_parse_bool_false_spellings(text: str) -> None:
    assert parse_bool(text) is False


def test_parse_bool_rejects_other_words_with_exact_message() -> None:
    with pytest.raises(ValueError) as info:
        parse_bool("maybe")
    assert str(info.value) == (
        "expected a boolean (yes/no, true/false, y/n, on/off, 1/0), got 'maybe'"
    )


@pytest.mark.parametrize("text", ["", "2", "enabled", "yes please"])
def test_parse_bool_rejects_empty_and_unknown(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bool(text)


def test_parse_csv_splits_and_strips() -> None:
    assert parse_csv(" a , b,c ") == ["a", "b", "c"]


def test_parse_csv_empty_or_blank_is_empty_list() -> None:
    assert parse_csv("") == []
    assert parse_csv("  \n\t\n") == []


def test_parse_csv_quoted_element_keeps_commas_and_edge_spaces() -> None:
    text = '"Keep-Alive: timeout=5, max=100", X-Test: 1, " padded "'
    assert parse_csv(text) == ["Keep-Alive: timeout=5, max=100", "X-Test: 1", " padded "]


def test_parse_csv_doubled_quote_inside_quotes_is_literal_quote() -> None:
    assert parse_csv('"say ""hi""", x') == ['say "hi"', "x"]


def test_parse_csv_quote_inside_unquoted_element_is_literal() -> None:
    assert parse_csv('a"b, c""d') == ['a"b', 'c""d']


def test_parse_csv_newlines_separate_elements() -> None:
    assert parse_csv("a,\n b\n c, d") == ["a", "b", "c", "d"]


def test_parse_csv_trailing_comma_is_ignored() -> None:
    assert parse_csv("a, b,") == ["a", "b"]
    assert parse_csv('"a",  ') == ["a"]


@pytest.mark.parametrize("text", ["a,,b", ",a", "a, ,b", ",", '"", a', "a\n,b"])
def test_parse_csv_empty_element_is_error(text: str) -> None:
    with pytest.raises(ValueError, match="empty element in list"):
        parse_csv(text)


def test_parse_csv_unterminated_quote_is_error() -> None:
    with pytest.raises(ValueError, match="unterminated quote"):
        parse_csv('a, "b, c')


def test_parse_csv_text_after_closing_quote_is_error() -> None:
    with pytest.raises(ValueError, match="after closing quote"):
        parse_csv('"a" b, c')


def test_format_csv_plain_elements_are_joined_with_comma_space() -> None:
    assert format_csv(["a", "b c", 'x"y']) == 'a, b c, x"y'


def test_format_csv_quotes_when_needed() -> None:
    assert format_csv(["a,b", " lead", "trail ", '"q']) == '"a,b", " lead", "trail ", """q"'


def test_format_csv_round_trips_awkward_elements() -> None:
    items = ['a,"b"', '""', " ", "x", 'he said "hi", then left']
    assert parse_csv(format_csv(items)) == items


def test_format_csv_empty_list_is_empty_text() -> None:
    assert format_csv([]) == ""
    assert parse_csv(format_csv([])) == []


def test_format_csv_refuses_empty_element() -> None:
    with pytest.raises(ValueError, match="empty element"):
        format_csv(["a", ""])


@pytest.mark.parametrize("item", ["a\nb", "a\rb"])
def test_format_csv_refuses_line_breaks(item: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        format_csv([item])


def test_parse_lines_strips_and_drops_blank_lines() -> None:
    assert parse_lines("  /outbox, allow-read \n\n\tm/x/, deny\n  \n") == [
        "/outbox, allow-read",
        "m/x/, deny",
    ]
    assert parse_lines("") == []
