"""The harness every mail backend's contract tests drive: a configured Mailbox and its server."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Protocol

from bot.kernel.mailbox import Mailbox


class MailboxHarness(Protocol):
    mailbox: Mailbox  # the adapter under test, already configured

    def deliver(self, raw: bytes) -> None:
        """Put a message into the inbox as an outside sender would."""
        ...

    def sent_message_ids(self) -> list[str]:
        """Return the Message-IDs (with <>) now in the server's Sent folder."""
        ...

    def folder_message_ids(self, folder: str) -> list[str]:
        """Return the Message-IDs in a named folder (e.g. "Processed")."""
        ...

    def inbox_message_ids(self) -> list[str]:
        """Return the Message-IDs still in the inbox."""
        ...


def make_message(
    subject: str,
    sender: str,
    to: str,
    message_id: str | None = None,
    body: str = "Please see the notification below.\n",
) -> bytes:
    """Return an RFC 5322 message (CRLF line ends) as an outside sender's mail client makes it."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id or make_msgid(domain="outside.test")
    message.set_content(body)
    return message.as_bytes()


def same_message(fetched: bytes, delivered: bytes) -> bool:
    """Say whether fetched is delivered, byte for byte, allowing only for line ends and trace.

    Servers store either CRLF or LF and may put trace headers (Received, Return-Path) on top;
    everything the sender wrote must come back unchanged.
    """

    def canonical(raw: bytes) -> bytes:
        return raw.replace(b"\r\n", b"\n").rstrip(b"\n")

    return canonical(fetched).endswith(canonical(delivered))
