"""A throwaway OpenLDAP ``slapd`` for tests of the ``ldap`` authentication method.

:class:`Slapd` writes a ``slapd.conf`` (mdb backend, suffix ``dc=mft,dc=test``, schemas
core/cosine/inetorgperson/nis) in its own folder, runs ``/usr/sbin/slapd`` in the foreground on
free 127.0.0.1 ports (plain LDAP, and LDAPS when given a :class:`TestPki`), waits until it
answers, and loads the test's LDIF with ``ldapadd`` on the first start. :meth:`Slapd.stop` and
:meth:`Slapd.start` restart it on the same ports with the same data (a server that went away);
:meth:`Slapd.pause` freezes it (a server that accepts connections but never answers). slapd
logs every operation (``-d 256``, stats) to a file, so a test can prove what reached it.

:class:`TestPki` makes, with ``cryptography``, a test CA, a server certificate it signs for
127.0.0.1/localhost, and a second CA that signed nothing (to prove that verification happens).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from sshkit import free_port
from testpki import CertificateAuthority

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=mft,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "admin-secret"
START_TIMEOUT = 10.0

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
{tls}
database mdb
maxsize 104857600
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {folder}/db
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""

BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: MFT test
dc: mft

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=partners,{SUFFIX}
objectClass: organizationalUnit
ou: partners
"""


def ssha(password: str) -> str:
    """A ``{SSHA}`` userPassword value, made by OpenLDAP's own ``slappasswd``."""
    result = subprocess.run(
        ["slappasswd", "-h", "{SSHA}", "-s", password],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


def person(
    uid: str,
    ou: str,
    password: str,
    *,
    home: str | None = None,
    extra: dict[str, list[str]] | None = None,
) -> str:
    """An LDIF entry ``uid=UID,ou=OU,dc=mft,dc=test``; with ``home``, a posixAccount."""
    lines = [f"dn: uid={uid},ou={ou},{SUFFIX}", "objectClass: inetOrgPerson"]
    if home is not None:
        lines.append("objectClass: posixAccount")
    lines += [f"uid: {uid}", f"cn: {uid.title()}", "sn: Test", f"userPassword: {password}"]
    if home is not None:
        lines += ["uidNumber: 10001", "gidNumber: 10001", f"homeDirectory: {home}"]
    for attribute, values in (extra or {}).items():
        lines += [f"{attribute}: {value}" for value in values]
    return "\n".join(lines) + "\n"


class TestPki:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and an unrelated CA."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create("ferryd test CA")
        self.ca_file = ca.write(folder / "ca.pem")
        self.other_ca_file = CertificateAuthority.create("unrelated test CA").write(
            folder / "other-ca.pem"
        )
        self.cert_file, self.key_file = ca.issue(folder, ("127.0.0.1", "localhost"))


class Slapd:
    """One slapd in ``folder``; nothing runs until :meth:`start`. Always call :meth:`close`."""

    def __init__(self, folder: Path, ldif: str = BASE_LDIF, *, pki: TestPki | None = None) -> None:
        self.folder = folder
        self.ldif = ldif
        self.pki = pki
        self.port = free_port()
        self.ldaps_port = free_port() if pki is not None else 0
        self.log_file = folder / "slapd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._loaded = False
        self._paused = False

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        assert self.pki is not None, "this slapd serves no LDAPS"
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart, same ports and data); on the first start load the LDIF."""
        assert not self.is_running(), "slapd is already running"
        if not (self.folder / "slapd.conf").exists():
            self._write_config()
        urls = self.url + "/" + (f" ldaps://127.0.0.1:{self.ldaps_port}/" if self.pki else "")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(self.folder / "slapd.conf"), "-h", urls, "-d", "256"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._paused = False
        self._wait_until_answering()
        if not self._loaded:
            self._ldapadd(self.ldif)
            self._loaded = True

    def stop(self) -> None:
        """Stop slapd (SIGTERM, as an administrator would); its data stays for :meth:`start`."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        if self._paused:
            process.send_signal(signal.SIGCONT)
            self._paused = False
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=START_TIMEOUT)

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): the kernel still accepts connections, nothing answers."""
        assert self.process is not None and self.is_running()
        self.process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        assert self.process is not None and self._paused
        self.process.send_signal(signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Teardown: slapd is gone whatever state the test left it in."""
        with contextlib.suppress(Exception):
            self.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=START_TIMEOUT)

    # -- what tests read ----------------------------------------------------------------

    def log_size(self) -> int:
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def log_since(self, offset: int) -> str:
        """What slapd logged after ``offset`` (from :meth:`log_size`)."""
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")

    def diagnostics(self) -> str:
        text = self.log_since(0) if self.log_file.exists() else ""
        return f"slapd in {self.folder}, log tail:\n{text[-3000:]}"

    # -- internals ----------------------------------------------------------------------

    def _write_config(self) -> None:
        (self.folder / "db").mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.pki is not None:
            tls = (
                f"TLSCACertificateFile {self.pki.ca_file}\n"
                f"TLSCertificateFile {self.pki.cert_file}\n"
                f"TLSCertificateKeyFile {self.pki.key_file}\n"
            )
        (self.folder / "slapd.conf").write_text(
            _CONF.format(
                folder=self.folder,
                tls=tls,
                suffix=SUFFIX,
                root_dn=ROOT_DN,
                root_password=ROOT_PASSWORD,
            )
        )

    def _wait_until_answering(self) -> None:
        """Poll with a deadline until an anonymous bind gets an answer."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"slapd exited with {self.process.returncode}\n{self.diagnostics()}"
                )
            try:
                server = ldap3.Server(
                    "127.0.0.1", port=self.port, get_info=ldap3.NONE, connect_timeout=1
                )
                connection = ldap3.Connection(server, receive_timeout=1)
                if connection.bind():
                    connection.unbind()
                    return
            except LDAPException:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"slapd did not answer within {START_TIMEOUT} s\n{self.diagnostics()}"
                )
            time.sleep(0.02)

    def _ldapadd(self, ldif: str) -> None:
        result = subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"ldapadd failed: {result.stderr}\n{self.diagnostics()}")
