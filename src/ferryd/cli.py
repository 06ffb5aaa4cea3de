"""The ``ferryd`` command line: init, serve, check, drain, bans, events, options, version."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from ferryd import __version__
from ferryd.bans import StateStoreError, list_bans, remove_bans, render
from ferryd.bootstrap import AlreadyInitialised, NotAFolder, describe, initialise
from ferryd.config.configuration import Configuration
from ferryd.config.loader import MAIN_FILE, load_configuration
from ferryd.config.problems import ConfigurationError
from ferryd.daemon import NodeOptions, serve
from ferryd.docs import configuration_markdown, events_markdown
from ferryd.drain import DrainError, drain
from ferryd.server import preflight

DEFAULT_CONFIG_DIR = "configuration"


def _config_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path(DEFAULT_CONFIG_DIR),
        help=f"configuration folder holding {MAIN_FILE} (default: ./{DEFAULT_CONFIG_DIR})",
    )


def _node_options(parser: argparse.ArgumentParser) -> None:
    """The configuration as one node reads it: its folder, its name and its override files."""
    _config_dir(parser)
    parser.add_argument(
        "--node-name", help="this node's name, {host.name} (default: the host name)"
    )
    parser.add_argument(
        "--override",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="node-local override file applied after server.override.ini (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferryd", description="ferryd: a fault-tolerant managed file transfer server."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create a configuration folder with keys and accounts")
    _config_dir(init)

    run = commands.add_parser("serve", help="run the server in the foreground")
    _node_options(run)

    check = commands.add_parser("check", help="validate server.ini and server.override.ini")
    _node_options(check)

    events = commands.add_parser("events", help="print the events catalogue")
    events.add_argument("--markdown", action="store_true", help="as docs/events.md")

    reference = commands.add_parser("options", help="print the configuration reference")
    reference.add_argument("--markdown", action="store_true", help="as docs/configuration.md")

    bans = commands.add_parser("bans", help="list or lift address bans")
    ban_commands = bans.add_subparsers(dest="bans_command", required=True, metavar="ACTION")
    listing = ban_commands.add_parser("list", help="print the addresses banned now")
    _node_options(listing)
    remove = ban_commands.add_parser("remove", help="lift the bans of an address")
    _node_options(remove)
    remove.add_argument("address", help="the banned IP address")
    remove.add_argument(
        "--scope", help="only this ban scope, e.g. security-policies/DEFAULT-SECURITY-POLICY"
    )

    drain = commands.add_parser(
        "drain", help="make a running node leave the load balancer, finish its sessions, stop"
    )
    _node_options(drain)
    drain.add_argument(
        "--no-wait", action="store_true", help="return once asked, without waiting for the exit"
    )

    commands.add_parser("version", help="print the version")
    return parser


def _init(config_dir: Path) -> int:
    try:
        credentials = initialise(config_dir)
    except (AlreadyInitialised, NotAFolder) as error:
        print(f"ferryd init: {error}", file=sys.stderr)
        return 1
    print(describe(credentials), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        configuration = _configuration(args)
        problems = preflight(configuration)
    except ConfigurationError as error:
        problems = error.problems
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{configuration.files[0]}: configuration is valid")
    return 0


def _configuration(args: argparse.Namespace) -> Configuration:
    return load_configuration(args.config_dir, node=args.node_name, overrides=args.override)


def _refused(error: ConfigurationError) -> int:
    """A command that needs the configuration, which has problems: one line each."""
    for problem in error.problems:
        print(problem, file=sys.stderr)
    return 1


def _bans(args: argparse.Namespace) -> int:
    try:
        if args.bans_command == "list":
            print(render(asyncio.run(list_bans(_configuration(args)))), end="")
            return 0
        lifted = asyncio.run(remove_bans(_configuration(args), args.address, args.scope))
    except ConfigurationError as error:
        return _refused(error)
    except (ValueError, StateStoreError) as error:
        print(f"ferryd bans {args.bans_command}: {error}", file=sys.stderr)
        return 1
    if not lifted:
        print(f"ferryd bans remove: {args.address} is not banned", file=sys.stderr)
        return 1
    for ban in lifted:
        print(f"Lifted the ban of {ban.address} by {ban.scope}.")
    return 0


def _drain(args: argparse.Namespace) -> int:
    try:
        drain(_configuration(args), wait=not args.no_wait)
    except ConfigurationError as error:
        return _refused(error)
    except DrainError as error:
        print(f"ferryd drain: {error}", file=sys.stderr)
        return 1
    return 0


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """uvloop when it is installed (it is a dependency on Linux): faster I/O and callbacks
    for every connection; the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"ferryd {__version__}")
        return 0
    if args.command == "events":
        print(events_markdown(), end="")
        return 0
    if args.command == "options":
        print(configuration_markdown(), end="")
        return 0
    if args.command == "init":
        return _init(args.config_dir)
    if args.command == "check":
        return _check(args)
    if args.command == "bans":
        return _bans(args)
    if args.command == "drain":
        return _drain(args)
    if not (args.config_dir / MAIN_FILE).exists():
        status = _init(args.config_dir)
        if status:
            return status
    options = NodeOptions(args.config_dir, args.node_name, tuple(args.override))
    return run_loop(serve(options))


if __name__ == "__main__":
    sys.exit(main())
