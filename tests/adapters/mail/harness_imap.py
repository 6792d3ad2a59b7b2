"""Contract harness for ImapSmtpMailbox against the real Dovecot and SMTP test servers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.adapters.mail.imap import ImapReader
from bot.adapters.mail.imap_session import ImapEndpoint
from bot.adapters.mail.imap_smtp import ImapSmtpMailbox
from bot.adapters.mail.mail_server import Login
from bot.adapters.mail.smtp import SmtpEndpoint, SmtpSender
from tests.servers.fixtures import BOT_PASSWORD, MailServers

NAME = "imap"


def imap_endpoint(servers: MailServers, **changes: object) -> ImapEndpoint:
    """Return the test server's IMAPS endpoint, trusting its CA, with any changes given."""
    endpoint = ImapEndpoint(
        servers.host, servers.imaps_port, "ssl", str(servers.ca_file), timeout=10.0
    )
    return replace(endpoint, **changes)  # type: ignore[arg-type]


def smtp_endpoint(servers: MailServers, **changes: object) -> SmtpEndpoint:
    """Return the test server's SMTP endpoint with STARTTLS, trusting its CA, with any changes."""
    endpoint = SmtpEndpoint(
        servers.host, servers.smtp_port, "starttls", str(servers.ca_file), timeout=10.0
    )
    return replace(endpoint, **changes)  # type: ignore[arg-type]


def make_mailbox(
    servers: MailServers,
    address: str,
    *,
    imap: ImapEndpoint | None = None,
    smtp: SmtpEndpoint | None = None,
    password: str = BOT_PASSWORD,
    smtp_password: str | None = None,
    use_idle: bool = True,
    poll_seconds: float = 0.2,
    fetch_batch: int = 25,
) -> ImapSmtpMailbox:
    """Return an adapter for address on the test servers: IMAPS and SMTP with STARTTLS.

    SMTP logs in as address too, with smtp_password when one is given and else password.
    """
    reader = ImapReader(
        imap or imap_endpoint(servers),
        Login(address, password),
        use_idle=use_idle,
        poll_seconds=poll_seconds,
        fetch_batch=fetch_batch,
    )
    sender = SmtpSender(
        smtp or smtp_endpoint(servers),
        Login(address, smtp_password if smtp_password is not None else password),
    )
    return ImapSmtpMailbox(reader, sender)


class ImapHarness:
    def __init__(self, servers: MailServers) -> None:
        self.servers = servers
        self.address = servers.new_user("bot")
        self.mailbox = make_mailbox(servers, self.address)

    def deliver(self, raw: bytes) -> None:
        self.servers.deliver(self.address, raw)

    def sent_message_ids(self) -> list[str]:
        return self.servers.message_ids(self.address, "Sent")

    def folder_message_ids(self, folder: str) -> list[str]:
        return self.servers.message_ids(self.address, folder)

    def inbox_message_ids(self) -> list[str]:
        return self.servers.message_ids(self.address, "INBOX")


def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImapHarness]:
    built = ImapHarness(request.getfixturevalue("mail_servers"))
    try:
        yield built
    finally:
        built.mailbox.close()
