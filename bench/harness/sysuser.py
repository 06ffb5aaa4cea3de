"""A temporary system account that OpenSSH's sessions run as, with a password in /etc/shadow.

Only possible as root: ``useradd`` creates ``ferrydbench`` (shell bash, home = OpenSSH's
benchmark folder, which has no .bashrc), ``usermod -p`` stores a sha512-crypt hash made by
``openssl passwd -6`` (5,000 rounds, the glibc default), and ``userdel`` removes the account
at the end of the run, also on error or Ctrl-C. ferryd's account gets the very same hash, so
both servers pay the same hashing cost per password login.

Why not simply the current user: sshd starts every subsystem through the user's login shell
(``$SHELL -c /usr/lib/openssh/sftp-server``), and bash run that way reads ~/.bashrc, so a
busy .bashrc (pyenv, conda, ...) would be billed to OpenSSH: on the development machine it
cost 0.8 s and 0.13 CPU s per session. The account's bash finds no ~/.bashrc (Debian's
/etc/bash.bashrc returns at once when not interactive) and, given a single command, replaces
itself with sftp-server, so each session is exactly sshd + sftp-server. (dash would read no
file either, but would stay around as an extra process per session.)

An account of that name that the harness did not create is never touched. Without root,
OpenSSH runs as the current user (with that caveat) and password logins are skipped.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.server import run_checked

USER_NAME = "ferrydbench"
MARKER = "ferryd benchmark (temporary)"
SHELL = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"


@dataclass(frozen=True)
class Account:
    """Who OpenSSH's sessions run as, and the password both servers accept.

    ``user`` is None when no system account could be made (OpenSSH then runs as the
    current user and password logins are skipped); ``reason`` says why.
    """

    user: str | None
    password: str = ""
    hash: str = ""
    reason: str = ""

    @property
    def login(self) -> str:
        """The OpenSSH login name for key logins."""
        return self.user or getpass.getuser()

    @property
    def shell(self) -> str:
        """The login shell sshd will start sftp-server with."""
        try:
            return pwd.getpwnam(self.login).pw_shell
        except KeyError:
            return "unknown"


def sha512_crypt(password: str) -> str:
    """A ``$6$`` hash with the default 5,000 rounds, from OpenSSL (the password via stdin)."""
    return run_checked(["openssl", "passwd", "-6", "-stdin"], stdin=password + "\n").strip()


def why_not() -> str:
    """Why the account cannot be created here, or '' if it can."""
    if os.geteuid() != 0:
        return "needs root (to create a system account whose password sshd checks in /etc/shadow)"
    for tool in ("useradd", "usermod", "userdel", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    with contextlib.suppress(KeyError):
        if pwd.getpwnam(USER_NAME).pw_gecos != MARKER:
            return f"a user {USER_NAME} exists that this benchmark did not create"
    return ""


@contextlib.contextmanager
def bench_account(home: Path, wanted: bool = True) -> Iterator[Account]:
    """Create the account for the run (reusing one a killed run left), then delete it.

    The password and its hash are made even without the account, for ferryd alone.
    """
    password = secrets.token_urlsafe(18)
    hashed = sha512_crypt(password) if shutil.which("openssl") else ""
    reason = why_not() if wanted else "OpenSSH is not run"
    if reason:
        yield Account(None, password if hashed else "", hashed, reason)
        return
    try:
        pwd.getpwnam(USER_NAME)
    except KeyError:
        run_checked(
            [
                *("useradd", "--system", "--no-create-home", "--shell", SHELL),
                *("--home-dir", str(home), "--comment", MARKER, USER_NAME),
            ]
        )
    try:
        run_checked(
            ["usermod", "--home", str(home), "--shell", SHELL, "--password", hashed, USER_NAME]
        )
        yield Account(USER_NAME, password, hashed)
    finally:
        run_checked(["userdel", USER_NAME])
