"""The human summary (markdown) and the JSON record of a run, both under bench/results/."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.results import Measurement

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LATEST = RESULTS_DIR / "latest.md"
LATEST_PARTIAL = RESULTS_DIR / "latest-partial.md"
LABELS = {
    "openssh": "OpenSSH",
    "ferryd": "ferryd",
    "ferryd-quiet": "ferryd, handlers off",
    "ferryd-events": "ferryd + local-file",
}


def number(value: float) -> str:
    """Three significant digits, without exponent for the sizes seen here."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def spread_cell(row: Measurement, server: str) -> str:
    """'median (min–max)', or a dash when the server was not run."""
    spread = row.spread(server)
    if spread is None:
        return "-"
    median, low, high = spread
    return f"{number(median)} ({number(low)}–{number(high)})"


def ratio_cell(ratio: float | None) -> str:
    """Two decimals, three below 0.1 (so 0.052 does not show as a passing 0.05)."""
    if ratio is None:
        return "-"
    return f"{ratio:.3f}" if ratio < 0.1 else f"{ratio:.2f}"


def met_cell(row: Measurement) -> str:
    """yes / **no** / - (no target or no ratio)."""
    met = row.met()
    return "-" if met is None else ("yes" if met else "**no**")


def table(rows: Sequence[Measurement]) -> list[str]:
    """One markdown table; the reference is OpenSSH except where the measurement says."""
    lines = [
        "| Case | Measurement | Unit | Reference: median (min–max) | ferryd: median (min–max)"
        " | Ratio | Target | Met |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if row.skipped:
            target = "-" if row.goal is None else str(row.goal)
            lines.append(f"| {row.case} | {row.name} | | {row.skipped} | | | {target} | skipped |")
            continue
        ratio = row.ratio()
        unit = f"{row.unit} {'↑' if row.higher_is_better else '↓'}"
        reference = spread_cell(row, row.reference)
        candidate = spread_cell(row, row.candidate)
        if row.reference != "openssh":
            reference = f"{LABELS.get(row.reference, row.reference)}: {reference}"
            candidate = f"{LABELS.get(row.candidate, row.candidate)}: {candidate}"
        lines.append(
            f"| {row.case} | {row.name} | {unit} | {reference} | {candidate}"
            f" | {ratio_cell(ratio)}"
            f" | {'-' if row.goal is None else str(row.goal)} | {met_cell(row)} |"
        )
    return lines


def setup_lines(setup: dict[str, Any]) -> list[str]:
    """Who OpenSSH's sessions ran as, which matters for its per-session cost."""
    sessions = setup.get("openssh_sessions")
    if not sessions:
        return []
    line = f"OpenSSH sessions ran as `{sessions['user']}` (shell `{sessions['shell']}`)"
    if sessions["note"]:
        line += f"; no temporary account: {sessions['note']}"
    return [line + ".", ""]


def markdown(report: dict[str, Any], rows: Sequence[Measurement], json_path: Path) -> str:
    """bench/results/latest.md: targets first, then the details, then how to read them."""
    machine = report["machine"]
    targets = [row for row in rows if row.goal is not None]
    details = [row for row in rows if row.goal is None]
    notes = [f"- {row.case}, {row.name}: {note}" for row in rows for note in row.notes]
    met = [row.met() for row in targets]
    lines = [
        "# Benchmark: ferryd vs OpenSSH (latest run)",
        "",
        f"Run {report['started_utc']} on {machine['nproc']} x {machine['cpu']},"
        f" {machine['openssh']}, ferryd {machine['ferryd']} (commit {machine['git_commit']}),"
        f" Python {machine['python']}, asyncssh {machine['asyncssh']}."
        f" Arguments: `{report['command_line']}`. Took {report['duration_s'] / 60:.1f} min."
        f" Raw data: `{json_path.relative_to(REPO_DIR)}`.",
        "",
        *setup_lines(report.get("setup", {})),
        f"Targets met: {met.count(True)} of {len(targets)}"
        + (f" ({met.count(None)} not measured)" if None in met else "")
        + ".",
        "",
        "## Targets",
        "",
        *table(targets),
        "",
        "## Details",
        "",
        *table(details),
        "",
        "Ratio = ferryd median / reference median, in the row's unit (↑: higher is better,"
        " ↓: lower is better), so a target `>= 1` means at least as good as the reference and"
        " `<= 0.05` means at most 5 % of it. The reference is OpenSSH (sshd + sftp-server),"
        " except for the `events` case, which compares ferryd with and without an event"
        " handler. Medians, minimum and maximum are over the rounds; see bench/README.md for"
        " how each case is measured.",
    ]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def first_line(command: Sequence[str]) -> str:
    """First line of a version command's output (``ssh -V`` writes to stderr)."""
    with contextlib.suppress(OSError, IndexError):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        return (result.stdout + result.stderr).strip().splitlines()[0]
    return "unknown"


def package_version(name: str) -> str:
    """Installed version of a Python distribution, or 'unknown'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cpu_model() -> str:
    """The CPU name from /proc/cpuinfo, since MB/s mean little without it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    """The checked-out commit, read from .git without running git (others commit here)."""
    git = REPO_DIR / ".git"
    with contextlib.suppress(OSError):
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        with contextlib.suppress(OSError):
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0]
    return "unknown"


def machine_info() -> dict[str, Any]:
    """What is needed to compare results across machines and commits."""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "asyncssh": package_version("asyncssh"),
        "cryptography": package_version("cryptography"),
        "ferryd": package_version("ferryd"),
        "openssh": first_line(["ssh", "-V"]),
        "git_commit": git_commit(),
    }


def save(
    report: dict[str, Any], rows: Sequence[Measurement], started: datetime, complete: bool
) -> tuple[Path, Path]:
    """Write bench/results/<UTC start>.json and the markdown summary; return both paths.

    Only a complete run (every case, both servers, full sizes) replaces latest.md, which the
    README links to; --quick, --only and --only-case runs write latest-partial.md instead.
    """
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    record = {**report, "results": [row.as_json() for row in rows]}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    summary = LATEST if complete else LATEST_PARTIAL
    summary.write_text(markdown(report, rows, path))
    return path, summary
