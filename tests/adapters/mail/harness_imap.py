"""Contract harness for ImapSmtpMailbox against the real Dovecot and SMTP test servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.mail.imap import ImapSmtpMailbox
from tests.servers.fixtures import BOT_PASSWORD, MailServers

NAME = "imap"


def make_mailbox(servers: MailServers, address: str, **overrides: object) -> ImapSmtpMailbox:
    """Return an adapter for address on the test servers: IMAPS and SMTP with STARTTLS."""
    settings: dict[str, object] = {
        "imap_host": servers.host,
        "imap_port": servers.imaps_port,
        "imap_security": "ssl",
        "smtp_host": servers.host,
        "smtp_port": servers.smtp_port,
        "smtp_security": "starttls",
        "username": address,
        "password": BOT_PASSWORD,
        "ca_file": servers.ca_file,
        "poll_seconds": 0.2,
        "timeout": 10.0,
    }
    settings.update(overrides)
    return ImapSmtpMailbox(**settings)  # type: ignore[arg-type]


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
