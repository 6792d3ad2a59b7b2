"""A Dovecot IMAP server in a temporary folder, serving Maildirs the test SMTP server fills."""

from __future__ import annotations

import itertools
import mailbox
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType

from tests.servers import LOOPBACK, SETPRIV, free_port, wait_for_port

# Dovecot refuses uid 0 for mail processes, so the Maildirs belong to Debian's mail account.
MAIL_ACCOUNT = "mail"

CONFIG_TEMPLATE = """\
base_dir = {base_dir}/run
state_dir = {base_dir}/state
instance_name = {instance_name}
protocols = imap
listen = {host}
log_path = {base_dir}/dovecot.log
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
ssl = yes
ssl_cert = <{base_dir}/cert.pem
ssl_key = <{base_dir}/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base_dir}/users/%Lu
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={base_dir}/mail/%d/%n
}}
first_valid_uid = {mail_uid}
mail_location = maildir:~/Maildir
mail_fsync = never
shutdown_clients = yes
verbose_proctitle = yes
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


def make_certificate(directory: Path) -> Path:
    """Write a self-signed certificate for IP 127.0.0.1 and its key; return the cert path."""
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=rrbot test mail server",
            "-addext",
            f"subjectAltName=IP:{LOOPBACK}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.chmod(key, 0o600)
    return cert


def _port_is_free(port: int) -> bool:
    """Say whether a listening socket could be bound to 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


class MailStore:
    """The users and Maildirs behind the test mail servers: who exists, and what each holds."""

    def __init__(self, base_dir: Path, domains: set[str]) -> None:
        self.base_dir = base_dir
        self.domains = {domain.lower() for domain in domains}
        self.passwords: dict[str, str] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count()
        account = pwd.getpwnam(MAIL_ACCOUNT)
        self.mail_uid = account.pw_uid
        self.mail_gid = account.pw_gid
        self.users_dir = base_dir / "users"
        self.users_dir.mkdir(exist_ok=True)
        os.chmod(self.users_dir, 0o755)
        (base_dir / "mail").mkdir(exist_ok=True)
        self._chown(base_dir / "mail")

    def _chown(self, path: Path) -> None:
        """Give path to the mail account, as Dovecot's mail processes run under it."""
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def add_user(self, address: str, password: str) -> None:
        """Create a mail user with an empty Maildir; its domain becomes one the store owns."""
        local, _, domain = address.lower().partition("@")
        if not local or not domain or ":" in address or ":" in password or "\n" in password:
            raise ValueError(f"unusable test address or password for {address!r}")
        with self._lock:
            self.domains.add(domain)
            self.passwords[address.lower()] = password
            for folder in (self.base_dir / "mail" / domain, self.home(address)):
                folder.mkdir(exist_ok=True)
                self._chown(folder)
            self._make_maildir(self.maildir_path(address, "INBOX"))
            # One passwd-file per user: Dovecot reads a new file at once, whereas a changed
            # shared file is only re-read when its mtime (in seconds) or size changes.
            staging = self.users_dir / f".{address.lower()}.new"
            staging.write_text(f"{address.lower()}:{password}\n")
            os.chmod(staging, 0o644)
            os.replace(staging, self.users_dir / address.lower())

    def has_user(self, address: str) -> bool:
        """Say whether address is a user of this store."""
        return address.lower() in self.passwords

    def owns_domain(self, domain: str) -> bool:
        """Say whether mail for domain is delivered here."""
        return domain.lower() in self.domains

    def check_password(self, address: str, password: str) -> bool:
        """Say whether password is the user's password."""
        return self.passwords.get(address.lower()) == password

    def home(self, address: str) -> Path:
        """Return the user's home folder, as Dovecot's userdb computes it."""
        local, _, domain = address.lower().partition("@")
        return self.base_dir / "mail" / domain / local

    def maildir_path(self, address: str, folder: str = "INBOX") -> Path:
        """Return the Maildir++ folder Dovecot uses for an IMAP folder name."""
        root = self.home(address) / "Maildir"
        if folder.upper() == "INBOX":
            return root
        return root / ("." + folder.replace("/", "."))

    def _make_maildir(self, path: Path) -> None:
        """Create a Maildir's cur, new and tmp folders, owned by the mail account."""
        for folder in (path, path / "cur", path / "new", path / "tmp"):
            folder.mkdir(exist_ok=True)
            self._chown(folder)

    def deliver(self, address: str, raw: bytes) -> Path:
        """Write a message into the user's inbox as an MTA does: into tmp/, then rename to new/."""
        maildir = self.maildir_path(address, "INBOX")
        self._make_maildir(maildir)
        unique = (
            f"{int(time.time())}.M{time.time_ns() % 1_000_000}P{os.getpid()}"
            f"Q{next(self._counter)}.{socket.gethostname()}"
        )
        staging = maildir / "tmp" / unique
        with open(staging, "wb") as handle:
            handle.write(raw)
        self._chown(staging)
        final = maildir / "new" / unique
        os.rename(staging, final)
        return final

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """Return the raw bytes of every message in one of the user's folders."""
        path = self.maildir_path(address, folder)
        if not path.exists():
            return []
        found: list[bytes] = []
        store = mailbox.Maildir(str(path), factory=None, create=False)
        for key in store.keys():
            try:
                found.append(store.get_bytes(key))
            except (KeyError, FileNotFoundError):
                # Dovecot moved the file between listing and reading; it is not here any more.
                continue
        return found

    def message_ids(self, address: str, folder: str = "INBOX") -> list[str]:
        """Return the Message-ID header of every message in one of the user's folders."""
        parser = BytesHeaderParser(policy=default_policy)
        ids: list[str] = []
        for raw in self.messages(address, folder):
            value = parser.parsebytes(raw).get("Message-ID")
            if value is not None:
                ids.append(str(value).strip())
        return ids


class DovecotServer:
    """Dovecot with IMAP (plain and STARTTLS) and IMAPS on free ports of 127.0.0.1."""

    def __init__(self, base_dir: Path | None = None, domains: set[str] | None = None) -> None:
        self._owns_base_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="rrbot-dovecot-"))
        # Mail processes run as the mail account and must be able to reach the homes inside.
        os.chmod(self.base_dir, 0o755)
        self.host = LOOPBACK
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.ca_file = make_certificate(self.base_dir)
        self.cert_file = self.ca_file
        self.key_file = self.base_dir / "key.pem"
        self.store = MailStore(self.base_dir, domains or set())
        self.instance_name = f"rrbot-test-{self.base_dir.name}"
        self.config_file = self.base_dir / "dovecot.conf"
        self.config_file.write_text(
            CONFIG_TEMPLATE.format(
                base_dir=self.base_dir,
                instance_name=self.instance_name,
                host=self.host,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                mail_uid=self.store.mail_uid,
                mail_gid=self.store.mail_gid,
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def binary() -> str:
        """Return the dovecot program, or raise saying how to install it."""
        found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
        if found is None:
            raise RuntimeError("dovecot is not installed: run scripts/install-test-servers")
        return found

    def start(self) -> None:
        """Start Dovecot in the foreground of a child process and wait for both ports."""
        if self._process is not None and self._process.poll() is None:
            return
        command = [self.binary(), "-F", "-c", str(self.config_file)]
        if SETPRIV.exists():
            # Dovecot stops with the tests even if pytest is killed outright.
            command = [str(SETPRIV), "--pdeathsig", "TERM", "--", *command]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self._process = process
        try:
            for port in (self.imap_port, self.imaps_port):
                wait_for_port(port, 10, is_alive=lambda: process.poll() is None)
        except (TimeoutError, RuntimeError) as error:
            log = self.log_text()
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {error}\n{log}") from error

    def stop(self) -> None:
        """Stop Dovecot at once, as a crash would, dropping every IMAP connection it had."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # Dovecot's own shutdown takes a second; the tests need the effect, not the grace.
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        # Dovecot's master leaves login proxies and imap processes serving clients running;
        # kill them too, so that stopping the server really drops every connection.
        self._kill_processes(b"")
        self._wait_for_children()

    def _instance_processes(self, marker: bytes) -> list[int]:
        """Return the ids of this instance's processes whose title contains marker."""
        prefix = f"dovecot-{self.instance_name}/".encode()
        found: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(prefix) and marker in title:
                found.append(int(entry.name))
        return found

    def _kill_processes(self, marker: bytes) -> int:
        """Kill this instance's processes whose title contains marker; return how many."""
        pids = self._instance_processes(marker)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        return len(pids)

    def drop_connections(self, address: str) -> int:
        """Kill the imap processes serving address, as a server or network failure would."""
        return self._kill_processes(f"/imap [{address.lower()} ".encode())

    def _wait_for_children(self) -> None:
        """Wait until Dovecot's processes have let go of both ports, so it can start again."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if all(_port_is_free(port) for port in (self.imap_port, self.imaps_port)):
                return
            time.sleep(0.02)  # real-time ok: waiting for a real process, bounded

    def is_running(self) -> bool:
        """Say whether Dovecot is running."""
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Return Dovecot's log, for failure messages."""
        path = self.base_dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def doveadm(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run doveadm against this instance."""
        program = shutil.which("doveadm") or shutil.which("doveadm", path="/usr/bin:/usr/sbin")
        if program is None:
            raise RuntimeError("doveadm is not installed: run scripts/install-test-servers")
        return subprocess.run(
            [program, "-c", str(self.config_file), *arguments],
            check=True,
            capture_output=True,
            text=True,
        )

    def close(self) -> None:
        """Stop Dovecot and remove its folder."""
        self.stop()
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
