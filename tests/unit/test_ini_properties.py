"""Property tests: documents survive rendering, parsing and editing unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ferryd.ini import Document, format_csv, parse_csv

Data = dict[str, dict[str, str]]

# Any encodable character except line breaks; edge whitespace is trimmed away
# because the dialect strips it.
_chars = st.characters(codec="utf-8", exclude_characters="\r\n")
_value_line = st.text(_chars, min_size=1, max_size=20).map(str.strip).filter(bool)
_continuation = _value_line.filter(lambda line: line[0] not in ";#")
values = st.one_of(
    st.just(""),
    st.builds(
        lambda first, rest: "\n".join([first, *rest]),
        _value_line,
        st.lists(_continuation, max_size=3),
    ),
)
option_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
section_names = st.one_of(
    st.just("server"),
    st.builds(
        lambda kind, uid: f"{kind}/{uid}",
        st.sampled_from(["accounts", "groups", "services", "event-handlers"]),
        st.uuids().map(str),
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="]\r\n"), min_size=1),
)
documents_data: st.SearchStrategy[Data] = st.dictionaries(
    section_names, st.dictionaries(option_names, values, max_size=5), max_size=5
)


@given(documents_data)
def test_from_dict_render_parse_gives_same_data(data: Data) -> None:
    assert Document.parse(Document.from_dict(data).render()).as_dict() == data


@given(documents_data, st.data())
def test_set_changes_only_the_chosen_option(data: Data, draw: st.DataObject) -> None:
    doc = Document.parse(Document.from_dict(data).render())
    pairs = [(section, name) for section, options in data.items() for name in options]
    section, name = draw.draw(
        st.sampled_from(pairs) if pairs else st.tuples(section_names, option_names)
    )
    if draw.draw(st.booleans()):
        name = draw.draw(option_names)  # sometimes a new option
    value = draw.draw(values)
    doc.set(section, name, value)
    expected = {s: dict(options) for s, options in data.items()}
    expected.setdefault(section, {})[name] = value
    assert Document.parse(doc.render()).as_dict() == expected


@st.composite
def _filler(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(["", " ", "\t", "  \t "]))
    indent = draw(st.sampled_from(["", " ", "\t"]))
    return indent + draw(st.sampled_from([";", "#"])) + draw(st.text(_chars, max_size=15))


@st.composite
def texts(draw: st.DrawFn) -> tuple[str, Data]:
    """A valid text built from every kind of line, with the data it should parse to."""
    lines = [draw(_filler()) for _ in range(draw(st.integers(0, 2)))]
    expected: Data = {}
    for section in draw(st.lists(section_names, max_size=4, unique=True)):
        lines.append(f"[{section}]" + draw(st.sampled_from(["", " ", "\t "])))
        options = expected[section] = {}
        for name in draw(st.lists(option_names, max_size=4, unique=True)):
            spelled = draw(st.sampled_from([name, name.upper(), name.title()]))
            gap_before, gap_after, trailing = (
                draw(st.sampled_from(["", " ", "\t", "   "])) for _ in range(3)
            )
            inline = draw(st.one_of(st.just(""), _value_line))
            delim = draw(st.sampled_from("=:"))
            lines.append(f"{spelled}{gap_before}{delim}{gap_after}{inline}{trailing}")
            continuations = draw(st.lists(_continuation, max_size=2))
            for part in continuations:
                lines.append(draw(st.sampled_from([" ", "    ", "\t"])) + part + trailing)
            options[name] = "\n".join(([inline] if inline else []) + continuations)
            lines.extend(draw(_filler()) for _ in range(draw(st.integers(0, 1))))
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines)))
    text = "".join(line + eol for line, eol in zip(lines, endings, strict=False))
    if draw(st.booleans()) and lines:
        text = text[: -len(endings[len(lines) - 1])]  # no final newline
    bom = "\ufeff" if draw(st.booleans()) else ""
    return bom + text, expected


@given(texts())
def test_render_of_parse_is_identity_and_values_are_read(case: tuple[str, Data]) -> None:
    text, expected = case
    doc = Document.parse(text)
    assert doc.render() == text
    assert doc.as_dict() == expected


@given(st.lists(_continuation.filter(lambda item: "\n" not in item)))
def test_format_csv_round_trips(items: list[str]) -> None:
    assert parse_csv(format_csv(items)) == items


@given(st.lists(st.text(_chars, min_size=1)))
def test_format_csv_round_trips_any_non_empty_strings(items: list[str]) -> None:
    assert parse_csv(format_csv(items)) == items
