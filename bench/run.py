"""Benchmark ferryd against OpenSSH's sshd + sftp-server, side by side in one run.

Both servers run on this machine on free 127.0.0.1 ports and are driven by the same real
OpenSSH ``sftp`` client in batch mode, alternating A B A B so that drift in the machine
(thermal throttling, page cache, noisy neighbours) hits both equally.  Each timing covers a
whole ``sftp`` process: connection, key exchange, authentication and the transfer, which is
what a user of either server waits for.

Usage: ``.venv/bin/python bench/run.py [--quick] [--rounds N] [--only openssh|ferryd]``
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferryd.ini import Document

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
FERRYD = Path(sys.executable).parent / "ferryd"

MIB = 1024 * 1024
GCM = "aes128-gcm@openssh.com"
CHACHA = "chacha20-poly1305@openssh.com"
SERVER_NAMES = ("openssh", "ferryd")
FERRYD_USER = "bench"
SSH_SERVICE = "services/DEFAULT-SSH"
DEFAULT_GROUP = "groups/DEFAULT_GROUP"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


# -- data model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much data each workload moves; --quick shrinks it so a run takes seconds."""

    big_file: int
    small_files: int
    small_file: int = 4096
    rounds: int = 5


@dataclass(frozen=True)
class Workload:
    """One measured transfer: what sftp does, with which cipher, and how many bytes it moves."""

    name: str
    kind: str  # "upload", "download" or "many"
    cipher: str
    payload: int


@dataclass
class Target:
    """A running server and where the benchmark's files live on it.

    ``remote_root`` is the folder as the sftp client names it; ``local_root`` is the same
    folder on this machine, so uploads can be checked and removed without another session.
    """

    name: str
    port: int
    user: str
    remote_root: str
    local_root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def remote(self, name: str) -> str:
        """Path of ``name`` inside the server's benchmark folder, as sftp must spell it."""
        return f"{self.remote_root.rstrip('/')}/{name}"


@dataclass
class Workspace:
    """The temporary folder holding keys, configuration, source data and scratch space."""

    root: Path
    key: Path = field(init=False)
    big_file: Path = field(init=False)
    small_dir: Path = field(init=False)
    scratch: Path = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.root / "client_ed25519"
        self.big_file = self.root / "source" / "big.bin"
        self.small_dir = self.root / "source" / "many"
        self.scratch = self.root / "scratch"

    @property
    def public_key(self) -> str:
        """The one-line OpenSSH public key both servers must accept."""
        return self.key.with_suffix(".pub").read_text().strip()


# -- helpers ----------------------------------------------------------------------------------


def free_port() -> int:
    """Ask the kernel for an unused port; the tiny race until the server binds is acceptable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    """Last lines of a server log, so a failed start explains itself."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
    """Block until the server accepts TCP connections, failing fast if it exits instead."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} in {START_TIMEOUT:.0f} s")


def start_process(command: Sequence[str | Path], log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session so Ctrl-C reaches only us and we stop it in order."""
    with log.open("wb") as stream:
        return subprocess.Popen(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and the session children it forked (sshd forks one per connection)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_checked(command: Sequence[str | Path]) -> str:
    """Run a setup command; its output is only interesting when it fails."""
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def sftp_quote(path: str) -> str:
    """Quote a path for an sftp batch file, which splits words on spaces."""
    if '"' in path or "\\" in path or "\n" in path:
        raise ValueError(f"unsupported character in benchmark path {path!r}")
    return f'"{path}"'


# -- workspace --------------------------------------------------------------------------------


def write_random_file(path: Path, size: int) -> None:
    """Incompressible content, in chunks so a 1 GiB file never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        remaining = size
        while remaining:
            chunk = min(remaining, 4 * MIB)
            stream.write(os.urandom(chunk))
            remaining -= chunk


def prepare_workspace(root: Path, sizes: Sizes) -> Workspace:
    """Create the client key and the source data once; every round reuses them."""
    workspace = Workspace(root)
    run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", workspace.key])
    write_random_file(workspace.big_file, sizes.big_file)
    workspace.small_dir.mkdir(parents=True)
    for index in range(sizes.small_files):
        (workspace.small_dir / f"file-{index:05d}.bin").write_bytes(os.urandom(sizes.small_file))
    workspace.scratch.mkdir()
    return workspace


def link_download_source(workspace: Workspace, local_root: Path) -> None:
    """Hard-link the big file into a server's folder: same inode, so both read the same cache."""
    local_root.mkdir(parents=True, exist_ok=True)
    os.link(workspace.big_file, local_root / "download.bin")


# -- OpenSSH ----------------------------------------------------------------------------------


def sshd_config(workspace: Workspace, port: int, host_key: Path) -> str:
    """A self-contained sshd_config: key login only, the real sftp-server binary, no PAM.

    StrictModes is off because the temporary folder's permissions are not sshd's business here.
    """
    return "\n".join(
        [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {workspace.key.with_suffix('.pub')}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "PidFile none",
            "UseDNS no",
            "LogLevel ERROR",
            f"Subsystem sftp {SFTP_SERVER}",
            "",
        ]
    )


def start_openssh(workspace: Workspace) -> Target:
    """Run sshd in the foreground as the current user with its own host key and config."""
    folder = workspace.root / "openssh"
    folder.mkdir()
    host_key = folder / "ssh_host_ed25519_key"
    run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key])
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(sshd_config(workspace, port, host_key))
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
    log = folder / "sshd.log"
    process = start_process([SSHD, "-D", "-e", "-f", config], log)
    local_root = workspace.root / "openssh-data"
    target = Target("openssh", port, getpass.getuser(), str(local_root), local_root, process, log)
    wait_for_port(port, process, log, "sshd")
    return target


# -- ferryd -----------------------------------------------------------------------------------


def find_ssh_service(document: Document) -> str:
    """The SSH service section ``ferryd init`` wrote, or the default name to add."""
    if document.has_section(SSH_SERVICE):
        return SSH_SERVICE
    for section in document.sections():
        kind = document.get(section, "type")
        if section.startswith("services/") and kind is not None and kind.value == "ssh":
            return section
    return SSH_SERVICE


def configure_ferryd(config_file: Path, port: int, home_root: Path, public_key: str) -> None:
    """Edit server.ini with the project's own lossless INI API, as an operator's tool would.

    Imported here so ``--only openssh`` keeps working while ferryd itself is mid-change.
    """
    from ferryd.ini import read_document, write_document

    document = read_document(config_file)
    service = find_ssh_service(document)
    if not document.has_section(service):
        document.set(service, "name", "SFTP benchmark")
    for option, value in (
        ("type", "ssh"),
        ("port", str(port)),
        ("address", "127.0.0.1"),
        ("ssh_cipher_list", "all"),
    ):
        document.set(service, option, value)
    document.set(DEFAULT_GROUP, "home_folder_path", f"{home_root}/${{USER}}")
    document.set(DEFAULT_GROUP, "create_home_folder", "yes")
    account = f"accounts/{FERRYD_USER}"
    for option, value in (
        ("name", FERRYD_USER),
        ("group", "DEFAULT_GROUP"),
        ("ssh_authorized_keys_content", public_key),
        ("password", ""),
    ):
        document.set(account, option, value)
    write_document(config_file, document)


def start_ferryd(workspace: Workspace) -> Target:
    """Create a configuration with ``ferryd init``, point it at our key and port, and serve it."""
    config_dir = workspace.root / "ferryd-config"
    run_checked([FERRYD, "init", "--config-dir", config_dir])
    port = free_port()
    home_root = workspace.root / "ferryd-home"
    configure_ferryd(config_dir / "server.ini", port, home_root, workspace.public_key)
    check = subprocess.run(
        [str(FERRYD), "check", "--config-dir", str(config_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode:
        raise RuntimeError(
            "ferryd refuses the benchmark configuration (run with --only openssh until it"
            f" supports it):\n{check.stdout}{check.stderr}"
        )
    log = workspace.root / "ferryd.log"
    process = start_process([FERRYD, "serve", "--config-dir", config_dir], log)
    # Relative paths: they work whether ferryd shows the home folder as "/" or as its real path.
    local_root = home_root / FERRYD_USER
    target = Target("ferryd", port, FERRYD_USER, ".", local_root, process, log)
    wait_for_port(port, process, log, "ferryd")
    return target


# -- workloads --------------------------------------------------------------------------------


def workloads(sizes: Sizes) -> list[Workload]:
    """The measured transfers, in the order they run."""
    size = sizes.big_file
    label = f"{size // (1024 * MIB)} GiB" if size >= 1024 * MIB else f"{size // MIB} MiB"
    many = sizes.small_files * sizes.small_file
    return [
        *(
            Workload(f"{kind} {label}", kind, cipher, size)
            for cipher in (GCM, CHACHA)
            for kind in ("upload", "download")
        ),
        Workload(
            f"upload {sizes.small_files:,} x {sizes.small_file // 1024} KiB", "many", GCM, many
        ),
    ]


def batch_commands(workload: Workload, target: Target, workspace: Workspace) -> str:
    """The sftp batch file for one transfer."""
    if workload.kind == "upload":
        source, destination = str(workspace.big_file), target.remote("upload.bin")
        return f"put {sftp_quote(source)} {sftp_quote(destination)}\n"
    if workload.kind == "download":
        source, destination = target.remote("download.bin"), str(scratch_file(workspace))
        return f"get {sftp_quote(source)} {sftp_quote(destination)}\n"
    source, destination = str(workspace.small_dir), target.remote("many")
    return f"put -r {sftp_quote(source)} {sftp_quote(destination)}\n"


def scratch_file(workspace: Workspace) -> Path:
    """Where downloads land; removed after every round."""
    return workspace.scratch / "download.bin"


def sftp_command(target: Target, workspace: Workspace, batch: Path, cipher: str) -> list[str]:
    """The OpenSSH sftp client, isolated from ~/.ssh/config, agents and known_hosts."""
    return [
        "sftp",
        "-q",
        "-F",
        "/dev/null",
        "-b",
        str(batch),
        "-P",
        str(target.port),
        "-i",
        str(workspace.key),
        "-c",
        cipher,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        f"{target.user}@127.0.0.1",
    ]


def transfer(workload: Workload, target: Target, workspace: Workspace) -> float:
    """Run one sftp session and return its wall-clock seconds; any failure aborts the run."""
    batch = workspace.root / "batch.txt"
    batch.write_text(batch_commands(workload, target, workspace))
    command = sftp_command(target, workspace, batch, workload.cipher)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(
            f"{workload.name} ({workload.cipher}) against {target.name} failed with"
            f" {result.returncode}:\n{result.stdout}{result.stderr}\n"
            f"server log:\n{log_tail(target.log)}"
        )
    return elapsed


def tree_size(folder: Path) -> tuple[int, int]:
    """(file count, total bytes) under a folder, for comparing an uploaded tree to its source."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def transferred_size(workload: Workload, target: Target, workspace: Workspace) -> tuple[int, int]:
    """(file count, bytes) the server wrote or the client received; (0, 0) when missing."""
    if workload.kind == "many":
        folder = target.local_root / "many"
        return tree_size(folder) if folder.is_dir() else (0, 0)
    path = (
        target.local_root / "upload.bin" if workload.kind == "upload" else scratch_file(workspace)
    )
    return (1, path.stat().st_size) if path.is_file() else (0, 0)


def verify(workload: Workload, target: Target, workspace: Workspace, sizes: Sizes) -> None:
    """Cheap correctness check: the right number of files with the right total size arrived."""
    expected = (
        (sizes.small_files, workload.payload) if workload.kind == "many" else (1, sizes.big_file)
    )
    found = transferred_size(workload, target, workspace)
    if found != expected:
        raise RuntimeError(
            f"{workload.name} against {target.name}: expected (files, bytes) {expected},"
            f" found {found}"
        )


def clean_up(target: Target, workspace: Workspace) -> None:
    """Remove what a round wrote and flush it, so writeback does not bleed into the next timing."""
    with contextlib.suppress(FileNotFoundError):
        (target.local_root / "upload.bin").unlink()
    shutil.rmtree(target.local_root / "many", ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        scratch_file(workspace).unlink()
    os.sync()


def measure(
    workload: Workload, targets: list[Target], workspace: Workspace, sizes: Sizes
) -> dict[str, list[float]]:
    """Run the workload against each server in turn (A B A B ...), checking the first round."""
    timings: dict[str, list[float]] = {target.name: [] for target in targets}
    for round_index in range(sizes.rounds):
        for target in targets:
            clean_up(target, workspace)
            seconds = transfer(workload, target, workspace)
            if round_index == 0:
                verify(workload, target, workspace, sizes)
            clean_up(target, workspace)
            timings[target.name].append(seconds)
            print(
                f"  {workload.name:<28} {workload.cipher:<30} {target.name:<8}"
                f" round {round_index + 1}/{sizes.rounds}: {seconds:7.3f} s",
                flush=True,
            )
    return timings


# -- reporting --------------------------------------------------------------------------------


def summarise(workload: Workload, timings: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, throughput and the ferryd/OpenSSH throughput ratio for one workload."""
    medians = {name: statistics.median(values) for name, values in timings.items()}
    throughput = {name: workload.payload / 1e6 / seconds for name, seconds in medians.items()}
    ratio = None
    if "openssh" in medians and "ferryd" in medians:
        ratio = medians["openssh"] / medians["ferryd"]
    return {
        "workload": workload.name,
        "kind": workload.kind,
        "cipher": workload.cipher,
        "payload_bytes": workload.payload,
        "timings_s": timings,
        "median_s": medians,
        "mb_per_s": throughput,
        "ratio_ferryd_over_openssh": ratio,
    }


def cell(value: float | None, digits: int) -> str:
    """A table cell, with a dash for a server that was not run."""
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The human summary; ratio is ferryd throughput over OpenSSH's, so >1 means ferryd faster."""
    lines = [
        "| Workload | Cipher | OpenSSH median s | ferryd median s"
        " | OpenSSH MB/s | ferryd MB/s | ferryd/OpenSSH |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        median, rate = row["median_s"], row["mb_per_s"]
        lines.append(
            f"| {row['workload']} | {row['cipher']}"
            f" | {cell(median.get('openssh'), 3)} | {cell(median.get('ferryd'), 3)}"
            f" | {cell(rate.get('openssh'), 1)} | {cell(rate.get('ferryd'), 1)}"
            f" | {cell(row['ratio_ferryd_over_openssh'], 2)} |"
        )
    return "\n".join(lines)


def first_line(command: Sequence[str]) -> str:
    """First line of a version command's output (``ssh -V`` writes to stderr)."""
    with contextlib.suppress(OSError):
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
        "git_commit": first_line(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"]),
    }


def save_results(report: dict[str, Any], started: datetime) -> Path:
    """Write the JSON record under bench/results/, named by the UTC start time."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; --quick is for checking the harness, not for numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="64 MiB file, 200 small files and 2 rounds"
    )
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 5, --quick 2)")
    parser.add_argument("--only", choices=SERVER_NAMES, help="benchmark just one server")
    parser.add_argument(
        "--tmpdir", type=Path, help="parent of the work folder (needs ~3x the big file free)"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    """Full or quick sizes, with --rounds overriding either."""
    sizes = Sizes(64 * MIB, 200, rounds=2) if args.quick else Sizes(1024 * MIB, 2000)
    if args.rounds is not None:
        sizes = Sizes(sizes.big_file, sizes.small_files, sizes.small_file, args.rounds)
    return sizes


def start_servers(
    stack: contextlib.ExitStack, workspace: Workspace, names: Sequence[str]
) -> list[Target]:
    """Start the requested servers, registering each stop before starting the next."""
    starters = {"openssh": start_openssh, "ferryd": start_ferryd}
    targets = []
    for name in names:
        print(f"Starting {name} ...", flush=True)
        target = starters[name](workspace)
        stack.callback(stop_process, target.process)
        link_download_source(workspace, target.local_root)
        targets.append(target)
    return targets


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


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure every workload, and tear everything down whatever happens."""
    sizes = sizes_for(args)
    names = [args.only] if args.only else list(SERVER_NAMES)
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="ferryd-bench-", dir=args.tmpdir))
        stack.callback(shutil.rmtree, root, ignore_errors=True)  # runs last: servers stop first
        print(f"Preparing {root} ...", flush=True)
        workspace = prepare_workspace(root, sizes)
        targets = start_servers(stack, workspace, names)
        rows = []
        for workload in workloads(sizes):
            rows.append(summarise(workload, measure(workload, targets, workspace, sizes)))
    return {"sizes": asdict(sizes), "servers": names, "results": rows}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table and store the JSON record."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    try:
        with terminate_as_exit():
            report = benchmark(args)
    except KeyboardInterrupt:
        print("\nInterrupted; servers stopped and work folder removed.", file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    report = {
        "started_utc": started.isoformat(),
        "arguments": {"quick": args.quick, "rounds": args.rounds, "only": args.only},
        "machine": machine_info(),
        **report,
    }
    print()
    print(markdown_table(report["results"]))
    print("\nRatio: ferryd throughput / OpenSSH throughput (>1 means ferryd faster).")
    print(f"Saved {save_results(report, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
