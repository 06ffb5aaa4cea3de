"""Behaviour of the ``local-file`` rotation engine."""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ferryd.handlers.rotating_file import RotateOn, RotatingFile, RotationEvent


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)

    def set(self, moment: datetime) -> None:
        self.current = moment


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- RotateOn.parse -----------------------------------------------------------


@pytest.mark.parametrize("text", ["disabled", "DISABLED", "  Disabled ", ""])
def test_parse_disabled_returns_none(text: str) -> None:
    assert RotateOn.parse(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day-of-month", RotateOn("day-of-month", day=1)),
        ("31 day-of-month", RotateOn("day-of-month", day=31)),
        ("15  Day-Of-Month", RotateOn("day-of-month", day=15)),
        ("14:30 time-of-day", RotateOn("time-of-day", hour=14, minute=30)),
        ("00:00 time-of-day", RotateOn("time-of-day")),
        ("9:05 time-of-day", RotateOn("time-of-day", hour=9, minute=5)),
        ("23:59 time-of-day", RotateOn("time-of-day", hour=23, minute=59)),
    ],
)
def test_parse_accepts_schedules(text: str, expected: RotateOn) -> None:
    assert RotateOn.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "0 day-of-month",
        "32 day-of-month",
        "day-of-month",
        "24:00 time-of-day",
        "12:60 time-of-day",
        "12:5 time-of-day",
        "14:30",
        "1 day-of-week",
        "-1 day-of-month",
    ],
)
def test_parse_rejects_other_values_with_a_helpful_message(text: str) -> None:
    with pytest.raises(ValueError) as info:
        RotateOn.parse(text)
    message = str(info.value)
    assert "'disabled', 'N day-of-month' (1-31) or 'HH:MM time-of-day'" in message
    assert repr(text) in message


# -- RotateOn.next_after -------------------------------------------------------


def test_time_of_day_next_is_later_today_or_tomorrow() -> None:
    rule = RotateOn("time-of-day", hour=14, minute=30)
    assert rule.next_after(datetime(2024, 5, 1, 9, 0)) == datetime(2024, 5, 1, 14, 30)
    assert rule.next_after(datetime(2024, 5, 1, 15, 0)) == datetime(2024, 5, 2, 14, 30)


def test_next_after_exactly_at_the_instant_returns_the_following_one() -> None:
    daily = RotateOn("time-of-day")
    assert daily.next_after(datetime(2024, 5, 1)) == datetime(2024, 5, 2)
    monthly = RotateOn("day-of-month", day=1)
    assert monthly.next_after(datetime(2024, 5, 1)) == datetime(2024, 6, 1)


def test_time_of_day_crosses_year_end() -> None:
    rule = RotateOn("time-of-day")
    assert rule.next_after(datetime(2024, 12, 31, 23, 59, 59)) == datetime(2025, 1, 1)


def test_day_of_month_31_means_last_day_of_february_and_30_day_months() -> None:
    rule = RotateOn("day-of-month", day=31)
    assert rule.next_after(datetime(2023, 2, 10)) == datetime(2023, 2, 28)
    assert rule.next_after(datetime(2024, 2, 10)) == datetime(2024, 2, 29)
    assert rule.next_after(datetime(2024, 4, 1)) == datetime(2024, 4, 30)
    assert rule.next_after(datetime(2024, 4, 30)) == datetime(2024, 5, 31)
    assert rule.next_after(datetime(2024, 1, 31, 0, 0, 1)) == datetime(2024, 2, 29)


def test_day_of_month_rolls_into_next_year() -> None:
    rule = RotateOn("day-of-month", day=5)
    assert rule.next_after(datetime(2024, 12, 5, 0, 0)) == datetime(2025, 1, 5)
    assert rule.next_after(datetime(2024, 12, 4, 23, 59)) == datetime(2024, 12, 5)


# -- size rotation ---------------------------------------------------------


def test_size_rotation_shifts_newest_to_dot_one_and_never_splits_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.txt"
    rf = RotatingFile(str(path), rotate_at_size=10)
    rf.open()
    assert rf.write(b"aaaaaa\n") == []
    events = rf.write(b"bbbbbb\n")
    assert events == [RotationEvent(str(path), f"{path}.1", 7, False)]
    rf.write(b"cccccc\n")
    rf.write(b"a very long entry beyond the limit\n")
    rf.close()

    assert path.read_bytes() == b"a very long entry beyond the limit\n"
    assert (tmp_path / "log.txt.1").read_bytes() == b"cccccc\n"
    assert (tmp_path / "log.txt.2").read_bytes() == b"bbbbbb\n"
    assert (tmp_path / "log.txt.3").read_bytes() == b"aaaaaa\n"


def test_huge_entry_into_empty_file_is_written_without_rotation(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_at_size=4)
    rf.open()
    assert rf.write(b"0123456789") == []
    assert rf.size == 10
    assert len(rf.write(b"x")) == 1
    rf.close()
    assert path.read_bytes() == b"x"


def test_size_rotation_with_count_keeps_only_that_many(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_at_size=2, rotate_count=2)
    rf.open()
    for chunk in (b"1\n", b"2\n", b"3\n", b"4\n", b"5\n"):
        rf.write(chunk)
    rf.close()
    assert _names(tmp_path) == ["log", "log.1", "log.2"]
    assert path.read_bytes() == b"5\n"
    assert (tmp_path / "log.1").read_bytes() == b"4\n"
    assert (tmp_path / "log.2").read_bytes() == b"3\n"


def test_size_rotation_picks_up_existing_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"old\n")
    (tmp_path / "log.1").write_bytes(b"older\n")
    rf = RotatingFile(str(path), rotate_at_size=5)
    rf.open()
    assert rf.size == 4
    rf.write(b"new\n")
    rf.close()
    assert (tmp_path / "log.1").read_bytes() == b"old\n"
    assert (tmp_path / "log.2").read_bytes() == b"older\n"


def test_rotate_count_minus_one_truncates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_at_size=8, rotate_count=-1)
    rf.open()
    rf.write(b"abcdef\n")
    events = rf.write(b"ghijkl\n")
    rf.close()
    assert events == [RotationEvent(str(path), "", 7, True)]
    assert path.read_bytes() == b"ghijkl\n"
    assert _names(tmp_path) == ["log"]


def test_rotate_at_size_is_ignored_when_rotate_on_is_set(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 12, 0))
    path = tmp_path / "log"
    rf = RotatingFile(
        str(path), rotate_at_size=1, rotate_on=RotateOn.parse("00:00 time-of-day"), clock=clock.now
    )
    rf.open()
    assert rf.write(b"one\n") == []
    assert rf.write(b"two\n") == []
    rf.close()
    assert _names(tmp_path) == ["log"]


# -- time rotation ---------------------------------------------------------


def test_time_of_day_rotation_at_midnight_uses_the_scheduled_instant(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 23, 58))
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_on=RotateOn.parse("00:00 time-of-day"), clock=clock.now)
    rf.open()
    assert rf.write(b"before\n") == []
    clock.advance(minutes=1, seconds=59)
    assert rf.write(b"still before\n") == []
    clock.advance(minutes=5)  # 00:04:59 on the 2nd
    events = rf.write(b"after\n")
    rf.close()

    target = f"{path}.2024-05-02T000000"
    assert events == [RotationEvent(str(path), target, 20, False)]
    assert Path(target).read_bytes() == b"before\nstill before\n"
    assert path.read_bytes() == b"after\n"


def test_time_rotation_schedules_the_next_instant_after_rotating(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 10, 0))
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_on=RotateOn.parse("12:00 time-of-day"), clock=clock.now)
    rf.open()
    rf.write(b"a\n")
    clock.set(datetime(2024, 5, 1, 13, 0))
    assert len(rf.write(b"b\n")) == 1
    clock.set(datetime(2024, 5, 1, 23, 0))
    assert rf.write(b"c\n") == []
    clock.set(datetime(2024, 5, 2, 12, 0))
    assert [e.path for e in rf.write(b"d\n")] == [f"{path}.2024-05-02T120000"]
    rf.close()
    assert Path(f"{path}.2024-05-02T120000").read_bytes() == b"b\nc\n"


def test_time_rotation_skips_empty_file_and_moves_schedule_on(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 10, 0))
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_on=RotateOn.parse("00:00 time-of-day"), clock=clock.now)
    rf.open()
    clock.set(datetime(2024, 5, 2, 8, 0))
    assert rf.write(b"fresh\n") == []
    clock.set(datetime(2024, 5, 2, 9, 0))
    assert rf.write(b"more\n") == []
    rf.close()
    assert _names(tmp_path) == ["log"]


def test_day_of_month_31_rotates_on_last_day_of_february(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2023, 2, 27, 12, 0))
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_on=RotateOn.parse("31 day-of-month"), clock=clock.now)
    rf.open()
    rf.write(b"february\n")
    clock.set(datetime(2023, 2, 28, 0, 1))
    events = rf.write(b"last day\n")
    rf.close()
    assert [e.path for e in events] == [f"{path}.2023-02-28"]
    assert Path(f"{path}.2023-02-28").read_bytes() == b"february\n"


def test_time_rotation_name_collision_gets_numeric_suffix(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 10, 0))
    path = tmp_path / "log"
    (tmp_path / "log.2024-05-02").write_bytes(b"existing\n")
    (tmp_path / "log.2024-05-02.1").write_bytes(b"existing too\n")
    rf = RotatingFile(str(path), rotate_on=RotateOn.parse("2 day-of-month"), clock=clock.now)
    rf.open()
    rf.write(b"mine\n")
    clock.set(datetime(2024, 5, 2, 0, 0))
    events = rf.write(b"next\n")
    rf.close()
    assert [e.path for e in events] == [f"{path}.2024-05-02.2"]
    assert (tmp_path / "log.2024-05-02").read_bytes() == b"existing\n"
    assert (tmp_path / "log.2024-05-02.2").read_bytes() == b"mine\n"


def test_time_rotation_keeps_only_rotate_count_newest(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 10, 0))
    path = tmp_path / "log"
    (tmp_path / "log.1").write_bytes(b"unrelated size rotation\n")
    rf = RotatingFile(
        str(path), rotate_on=RotateOn.parse("00:00 time-of-day"), rotate_count=2, clock=clock.now
    )
    rf.open()
    for day in range(2, 6):
        rf.write(f"day {day - 1}\n".encode())
        clock.set(datetime(2024, 5, day, 0, 30))
    rf.write(b"day 5\n")
    rf.close()
    assert _names(tmp_path) == ["log", "log.1", "log.2024-05-04T000000", "log.2024-05-05T000000"]
    assert (tmp_path / "log.2024-05-05T000000").read_bytes() == b"day 4\n"
    assert path.read_bytes() == b"day 5\n"


def test_time_rotation_with_count_minus_one_truncates(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 5, 1, 10, 0))
    path = tmp_path / "log"
    rf = RotatingFile(
        str(path), rotate_on=RotateOn.parse("00:00 time-of-day"), rotate_count=-1, clock=clock.now
    )
    rf.open()
    rf.write(b"yesterday\n")
    clock.set(datetime(2024, 5, 2, 1, 0))
    assert rf.write(b"today\n") == [RotationEvent(str(path), "", 10, True)]
    rf.close()
    assert path.read_bytes() == b"today\n"


# -- external rotation -----------------------------------------------------


def test_rotate_external_follows_a_moved_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    moved = tmp_path / "log.moved"
    rf = RotatingFile(str(path), rotate_external=True)
    rf.open()
    rf.write(b"old\n")
    os.rename(path, moved)
    assert rf.write(b"new\n") == []
    rf.close()
    assert moved.read_bytes() == b"old\n"
    assert path.read_bytes() == b"new\n"


def test_rotate_external_follows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_external=True)
    rf.open()
    rf.write(b"old\n")
    os.rename(path, tmp_path / "log.0")
    path.write_bytes(b"created by other tool\n")
    rf.write(b"new\n")
    rf.close()
    assert path.read_bytes() == b"created by other tool\nnew\n"


def test_without_rotate_external_writes_follow_the_open_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    moved = tmp_path / "log.moved"
    rf = RotatingFile(str(path))
    rf.open()
    rf.write(b"old\n")
    os.rename(path, moved)
    rf.write(b"new\n")
    rf.close()
    assert moved.read_bytes() == b"old\nnew\n"
    assert not path.exists()


def test_reopen_after_external_move_writes_to_new_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    moved = tmp_path / "log.1"
    rf = RotatingFile(str(path))
    rf.open()
    rf.write(b"old\n")
    os.rename(path, moved)
    rf.reopen()
    assert rf.size == 0
    rf.write(b"new\n")
    rf.close()
    assert moved.read_bytes() == b"old\n"
    assert path.read_bytes() == b"new\n"


# -- opening and errors ----------------------------------------------------


def test_open_on_missing_folder_raises_file_not_found(tmp_path: Path) -> None:
    rf = RotatingFile(str(tmp_path / "missing" / "log"))
    with pytest.raises(FileNotFoundError):
        rf.open()
    with pytest.raises(FileNotFoundError):
        rf.write(b"x")


def test_open_appends_to_existing_file_and_reports_its_size(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"12345")
    rf = RotatingFile(str(path))
    rf.open()
    assert rf.size == 5
    rf.write(b"678")
    assert rf.size == 8
    rf.close()
    rf.close()
    assert path.read_bytes() == b"12345678"


def test_write_reopens_after_a_failed_open(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    rf = RotatingFile(str(folder / "log"))
    with pytest.raises(OSError):
        rf.open()
    folder.mkdir()
    rf.write(b"recovered\n")
    rf.close()
    assert (folder / "log").read_bytes() == b"recovered\n"


def test_failed_rotation_keeps_the_live_file_and_retries(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rf = RotatingFile(str(path), rotate_at_size=4, rotate_count=1)
    rf.open()
    rf.write(b"abc\n")
    blocker = tmp_path / "log.1"
    blocker.mkdir()  # os.remove cannot delete a folder: pruning fails
    with pytest.raises(OSError):
        rf.write(b"def\n")
    blocker.rmdir()
    assert len(rf.write(b"def\n")) == 1
    rf.close()
    assert (tmp_path / "log.1").read_bytes() == b"abc\n"
    assert path.read_bytes() == b"def\n"


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        RotatingFile("x", rotate_at_size=-1)
    with pytest.raises(ValueError):
        RotatingFile("x", rotate_count=-2)


def test_reopens_and_a_close_from_other_threads_lose_no_write(tmp_path: Path) -> None:
    """The handler writes on one worker thread while SIGHUP reopens on another, and a
    cancelled write still runs while the handler closes the file at stop."""
    path = tmp_path / "busy.log"
    rotating = RotatingFile(str(path))
    rotating.open()
    lines = 20000
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for number in range(lines):
                rotating.write(f"line {number}\n".encode())
        except BaseException as error:  # the assertion below reports it
            errors.append(error)
        finally:
            done.set()

    def reopener() -> None:
        while not done.is_set():
            rotating.reopen()

    threads = [threading.Thread(target=writer), threading.Thread(target=reopener)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rotating.close()
    assert errors == [], "a write met a file closed under it"
    written = path.read_text().splitlines()
    assert len(written) == lines, f"{lines - len(written)} writes lost"
    assert written == [f"line {number}" for number in range(lines)]
