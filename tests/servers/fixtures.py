"""Pytest plugin: session-wide real PostgreSQL and mail servers, and per-test databases."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import DovecotServer
from tests.servers.postgres import PostgresServer
from tests.servers.smtp import RelayedMail, SmtpServer

# The partnership's own domain on the test mail servers.
PARTNERSHIP_DOMAIN = "partnership.test"

# The bot's mailbox that every mail-server session starts with.
BOT_ADDRESS = f"bot@{PARTNERSHIP_DOMAIN}"
BOT_PASSWORD = "secret"


def pytest_configure(config: pytest.Config) -> None:
    """Silence a deprecation inside aiosmtpd that its own AUTH code triggers."""
    config.addinivalue_line(
        "filterwarnings", "ignore:Session.login_data is deprecated:DeprecationWarning"
    )


class MailServers:
    """Dovecot (IMAP) and an SMTP server that delivers into the Maildirs Dovecot serves."""

    def __init__(self) -> None:
        self.dovecot = DovecotServer(domains={PARTNERSHIP_DOMAIN})
        self.smtp = SmtpServer(
            self.dovecot.store, str(self.dovecot.cert_file), str(self.dovecot.key_file)
        )
        self.host = self.dovecot.host
        self.imap_port = self.dovecot.imap_port
        self.imaps_port = self.dovecot.imaps_port
        self.smtp_port = self.smtp.port
        self.smtps_port = self.smtp.smtps_port
        self.ca_file: Path = self.dovecot.ca_file
        self.users = self.dovecot.store.passwords

    def start(self) -> None:
        """Start Dovecot and the SMTP server, with the bot's own mailbox ready."""
        self.dovecot.start()
        self.smtp.start()
        self.add_user(BOT_ADDRESS, BOT_PASSWORD)

    def close(self) -> None:
        """Stop both servers and remove every file they used."""
        try:
            self.smtp.stop()
        finally:
            self.dovecot.close()

    def add_user(self, address: str, password: str) -> None:
        """Create a mailbox that both IMAP login and SMTP delivery know about."""
        self.dovecot.store.add_user(address, password)

    def new_user(self, prefix: str = "bot", password: str = BOT_PASSWORD) -> str:
        """Create a mailbox with a unique address, so a test starts from an empty inbox."""
        address = f"{prefix}-{uuid.uuid4().hex[:10]}@{PARTNERSHIP_DOMAIN}"
        self.add_user(address, password)
        return address

    def deliver(self, to: str, raw: bytes, sender: str = "sender@outside.test") -> None:
        """Send raw to a local mailbox through the SMTP server, as an outside sender would."""
        with smtplib.SMTP(self.host, self.smtp_port, timeout=10) as client:
            client.sendmail(sender, [to], raw)

    def message_ids(self, address: str, folder: str = "INBOX") -> list[str]:
        """Return the Message-IDs in one of a user's folders, read from the Maildir."""
        return self.dovecot.store.message_ids(address, folder)

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """Return the raw messages in one of a user's folders, read from the Maildir."""
        return self.dovecot.store.messages(address, folder)

    def maildir_path(self, address: str, folder: str = "INBOX") -> Path:
        """Return the Maildir holding one of a user's folders."""
        return self.dovecot.store.maildir_path(address, folder)

    def relayed(self) -> list[RelayedMail]:
        """Return the mail sent by logged-in clients to domains these servers do not own."""
        return list(self.smtp.handler.relayed)

    def stop_imap(self) -> None:
        """Stop Dovecot at once, dropping every IMAP connection."""
        self.dovecot.stop()

    def start_imap(self) -> None:
        """Start Dovecot again on the same ports."""
        self.dovecot.start()

    def drop_connections(self, address: str) -> int:
        """Kill the IMAP sessions of one user while the server stays up."""
        return self.dovecot.drop_connections(address)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Run a PostgreSQL 15 cluster for the whole test session."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """Give one test the SQLAlchemy URL of a fresh, empty database, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    """Run Dovecot and an SMTP server for the whole session; each test uses a new user."""
    servers = MailServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()
