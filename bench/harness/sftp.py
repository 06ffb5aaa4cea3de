"""The real OpenSSH ``sftp`` client in batch mode: the same binary and options for every server.

Key exchange and host key algorithms are pinned (curve25519-sha256, ssh-ed25519) so that the
only difference between servers is the server; the cipher is chosen per measurement.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from harness.server import Server, log_tail

GCM = "aes128-gcm@openssh.com"
CHACHA = "chacha20-poly1305@openssh.com"
KEX = "curve25519-sha256"
HOST_KEY = "ssh-ed25519"
OUTSTANDING_REQUESTS = 64  # sftp's default -R, stated so both directions use the same depth


def quote(path: str | Path) -> str:
    """Quote a path for an sftp batch file, which splits words on spaces."""
    text = str(path)
    if '"' in text or "\\" in text or "\n" in text:
        raise ValueError(f"unsupported character in benchmark path {text!r}")
    return f'"{text}"'


def sftp_command(
    server: Server, key: Path, batch: Path, cipher: str, request_size: int | None
) -> list[str]:
    """The sftp command line, isolated from ~/.ssh/config, agents and known_hosts.

    ``request_size`` None keeps the client's default (the largest read/write the server
    advertises with limits@openssh.com, 255 KiB for both servers); otherwise ``-B`` sets the
    size of every read and write request, with ``-R`` the number in flight.
    """
    command = ["sftp", "-q", "-F", "/dev/null", "-b", str(batch), "-P", str(server.port)]
    if request_size is not None:
        command += ["-B", str(request_size), "-R", str(OUTSTANDING_REQUESTS)]
    options = {
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "LogLevel": "ERROR",
        "KexAlgorithms": KEX,
        "HostKeyAlgorithms": HOST_KEY,
    }
    for name, value in options.items():
        command += ["-o", f"{name}={value}"]
    return [*command, "-i", str(key), "-c", cipher, f"{server.user}@127.0.0.1"]


def failure(server: Server, what: str, code: int, output: str) -> RuntimeError:
    """An error that carries the client's output and the end of the server's log."""
    return RuntimeError(
        f"{what} against {server.name} failed with {code}:\n{output}\n"
        f"server log:\n{log_tail(server.log)}"
    )


def run_batch(
    server: Server,
    key: Path,
    batch: Path,
    cipher: str,
    request_size: int | None = None,
) -> float:
    """Run one sftp session and return its wall-clock seconds; any failure aborts the run."""
    command = sftp_command(server, key, batch, cipher, request_size)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode:
        raise failure(
            server, batch.read_text().strip(), result.returncode, result.stdout + result.stderr
        )
    return elapsed


async def run_batch_async(server: Server, key: Path, batch: Path, cipher: str) -> float:
    """The same, as a coroutine, so many sessions can run at once."""
    command = sftp_command(server, key, batch, cipher, None)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode:
        text = output.decode(errors="replace")
        raise failure(server, batch.read_text().strip(), process.returncode, text)
    return elapsed


def write_batch(path: Path, *lines: str) -> Path:
    """An sftp batch file with the given commands."""
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
