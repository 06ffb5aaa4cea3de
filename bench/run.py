"""Benchmark ferryd against OpenSSH's sshd + sftp-server, side by side in one run.

Both servers run on this machine on free 127.0.0.1 ports and are driven by the same clients
(the real OpenSSH ``sftp`` in batch mode, or asyncssh for logins and idle sessions), rounds
alternating between servers so that drift in the machine (thermal throttling, page cache,
noisy neighbours) hits both equally. Six cases: bulk transfers, small files, concurrent
sessions, logins, memory per session and the cost of event handlers; see bench/README.md.

Usage: ``.venv/bin/python bench/run.py [--quick] [--rounds N] [--only openssh|ferryd]
[--only-case NAME ...] [--tmpdir DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cases import CASES
from harness.context import FULL, QUICK, Context, Scale
from harness.report import machine_info, save, table
from harness.results import Measurement
from harness.sysuser import bench_account
from harness.workspace import Workspace

SERVER_NAMES = ("openssh", "ferryd")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; --quick is for checking the harness, not for numbers."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 2 rounds (64 MiB file, 200 small files, 10 sessions, ...):"
        " checks the harness in a minute or two",
    )
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 3)")
    parser.add_argument("--only", choices=SERVER_NAMES, help="benchmark just one server")
    parser.add_argument(
        "--only-case",
        action="append",
        choices=list(CASES),
        metavar="NAME",
        help=f"run only this case (repeatable): {', '.join(CASES)}",
    )
    parser.add_argument(
        "--tmpdir", type=Path, help="parent of the work folder (needs ~3x the big file free)"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def scale_for(args: argparse.Namespace) -> Scale:
    """Full or quick sizes, with --rounds overriding either."""
    scale = QUICK if args.quick else FULL
    return scale if args.rounds is None else replace(scale, rounds=args.rounds)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so the cleanup in ``finally`` blocks still runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cases(
    args: argparse.Namespace, names: list[str], setup: dict[str, Any]
) -> list[Measurement]:
    """Set up, run every selected case, and tear everything down whatever happens.

    ``setup`` receives how the servers were set up, for the report.
    """
    rows: list[Measurement] = []
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="ferryd-bench-", dir=args.tmpdir))
        stack.callback(shutil.rmtree, root, ignore_errors=True)  # runs last
        print(f"Work folder {root}", flush=True)
        # OpenSSH's sessions run as a temporary system account (see harness/sysuser.py).
        home = root / "openssh-data"  # the OpenSSH server's benchmark folder
        account = stack.enter_context(bench_account(home, wanted=args.only != "ferryd"))
        if account.user is None and args.only != "ferryd":
            print(f"OpenSSH sessions run as {account.login} ({account.shell}): {account.reason}")
        setup["openssh_sessions"] = {
            "user": account.login,
            "shell": account.shell,
            "password_logins": bool(account.user),
            "note": account.reason,
        }
        ctx = Context(Workspace(root), scale_for(args), account, args.only)
        for number, name in enumerate(names, 1):
            print(f"== case {number}/{len(names)}: {name}", flush=True)
            ctx.case = name
            started = time.monotonic()
            case_rows = CASES[name](ctx)
            rows += case_rows
            print(f"== {name} done in {time.monotonic() - started:.0f} s", flush=True)
            print("\n".join(table(case_rows)), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and store the JSON record and markdown summary."""
    args = parse_args(argv)
    names = [name for name in CASES if not args.only_case or name in args.only_case]
    started = datetime.now(UTC)
    clock = time.monotonic()
    setup: dict[str, Any] = {}
    try:
        with terminate_as_exit():
            rows = run_cases(args, names, setup)
    except KeyboardInterrupt:
        print("\nInterrupted; servers stopped and work folder removed.", file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    report: dict[str, Any] = {
        "started_utc": started.isoformat(),
        "duration_s": time.monotonic() - clock,
        "command_line": shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "arguments": {
            "quick": args.quick,
            "rounds": args.rounds,
            "only": args.only,
            "only_case": args.only_case,
        },
        "cases": names,
        "machine": machine_info(),
        "setup": setup,
        "scale": asdict(scale_for(args)),
    }
    complete = not (args.quick or args.only or args.only_case)
    json_path, summary = save(report, rows, started, complete)
    print()
    print("\n".join(table(rows)))
    print(f"\nTook {report['duration_s'] / 60:.1f} min. Saved {json_path} and {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
