"""The ``rotate_on`` schedule of log files: monthly on a day, or daily at a time.

It lives with the configuration models so that a bad schedule is refused when the
configuration is validated, with its line, rather than when the handler starts.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

_DAY_RE = re.compile(r"(\d{1,2})\s+day-of-month", re.IGNORECASE)
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})\s+time-of-day", re.IGNORECASE)
_DAY_FORMAT = "%Y-%m-%d"
_TIME_FORMAT = "%Y-%m-%dT%H%M%S"


@dataclass(frozen=True)
class RotateOn:
    """A parsed ``rotate_on`` schedule: monthly on a day, or daily at a time."""

    kind: Literal["day-of-month", "time-of-day"]
    day: int = 0
    hour: int = 0
    minute: int = 0

    @classmethod
    def parse(cls, text: str) -> RotateOn | None:
        """Parse the configuration value; ``None`` means time rotation is off."""
        value = text.strip()
        if not value or value.lower() == "disabled":
            return None
        if match := _DAY_RE.fullmatch(value):
            day = int(match.group(1))
            if 1 <= day <= 31:
                return cls("day-of-month", day=day)
        elif match := _TIME_RE.fullmatch(value):
            hour, minute = int(match.group(1)), int(match.group(2))
            if hour <= 23 and minute <= 59:
                return cls("time-of-day", hour=hour, minute=minute)
        raise ValueError(
            f"expected 'disabled', 'N day-of-month' (1-31) or 'HH:MM time-of-day', got {text!r}"
        )

    def next_after(self, moment: datetime) -> datetime:
        """Return the first rotation instant strictly after ``moment``.

        Days past the end of a month are clamped to its last day, so ``31``
        means "last day of every month" and ``30`` still rotates in February.
        """
        if self.kind == "time-of-day":
            candidate = moment.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
            return candidate if candidate > moment else candidate + timedelta(days=1)
        candidate = self._in_month(moment, moment.year, moment.month)
        if candidate > moment:
            return candidate
        if moment.month == 12:
            return self._in_month(moment, moment.year + 1, 1)
        return self._in_month(moment, moment.year, moment.month + 1)

    def _in_month(self, moment: datetime, year: int, month: int) -> datetime:
        last = calendar.monthrange(year, month)[1]
        return datetime(year, month, min(self.day, last), tzinfo=moment.tzinfo)

    @property
    def name_format(self) -> str:
        """``strftime`` format used to name files rotated on this schedule."""
        return _DAY_FORMAT if self.kind == "day-of-month" else _TIME_FORMAT
