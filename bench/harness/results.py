"""Measurements, their statistics and targets: what every case returns."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolation percentile (numpy's default), e.g. ``fraction=0.99`` for p99."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Goal:
    """A target for the ratio ferryd / reference, e.g. ``>= 1.0`` or ``<= 0.05``."""

    operator: str
    value: float

    def met(self, ratio: float | None) -> bool | None:
        """True or False, or None when the ratio is unknown (a server was not run)."""
        if ratio is None:
            return None
        return ratio >= self.value if self.operator == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{self.operator} {self.value:g}"


@dataclass
class Measurement:
    """One quantity measured over rounds on a reference server and a candidate.

    The ratio is always candidate median / reference median in ``unit``; ``higher_is_better``
    only says how to read it. Rows with a goal are the ones the issue sets targets for; the
    others are details (CPU per GiB, session percentiles, ...).
    """

    case: str
    name: str
    unit: str
    higher_is_better: bool
    samples: dict[str, list[float]]
    reference: str = "openssh"
    candidate: str = "ferryd"
    goal: Goal | None = None
    skipped: str = ""
    notes: list[str] = field(default_factory=list)

    def median(self, server: str) -> float | None:
        """Median over the rounds on ``server``, or None if it was not run."""
        values = self.samples.get(server)
        return statistics.median(values) if values else None

    def spread(self, server: str) -> tuple[float, float, float] | None:
        """(median, min, max) on ``server``."""
        values = self.samples.get(server)
        return (statistics.median(values), min(values), max(values)) if values else None

    def ratio(self) -> float | None:
        """Candidate median / reference median."""
        candidate, reference = self.median(self.candidate), self.median(self.reference)
        if candidate is None or reference is None or reference == 0:
            return None
        return candidate / reference

    def met(self) -> bool | None:
        """Whether the goal is met (None without a goal or a ratio)."""
        return None if self.goal is None else self.goal.met(self.ratio())

    def as_json(self) -> dict[str, Any]:
        """Raw samples plus the derived statistics, for bench/results/*.json."""
        return {
            "case": self.case,
            "name": self.name,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "reference": self.reference,
            "candidate": self.candidate,
            "samples": self.samples,
            "median": {server: self.median(server) for server in self.samples},
            "min": {server: min(values) for server, values in self.samples.items() if values},
            "max": {server: max(values) for server, values in self.samples.items() if values},
            "ratio": self.ratio(),
            "target": None if self.goal is None else str(self.goal),
            "met": self.met(),
            "skipped": self.skipped or None,
            "notes": self.notes,
        }


def skipped(case: str, name: str, reason: str, goal: Goal | None = None) -> Measurement:
    """A row that could not be measured here, with the reason in the table."""
    return Measurement(case, name, "", True, {}, goal=goal, skipped=reason)
