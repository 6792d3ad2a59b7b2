"""A message to send as its bytes, with its envelope: the outbox's payload is sent unparsed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr

from bot.kernel.headers import UnsafeHeader, safe_text

# One header field of a header block with CRLF line ends, its folded lines included.
_FIELD = rb"^%s:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n"
_DATE = re.compile(_FIELD % rb"Date", re.IGNORECASE | re.MULTILINE)
_ADDRESSES = {name: re.compile(_FIELD % name.encode(), re.IGNORECASE | re.MULTILINE)
              for name in ("From", "To", "Cc", "Bcc")}


@dataclass(frozen=True)
class OutgoingMail:
    """An RFC 5322 message as bytes with CRLF line ends, and who it goes from and to."""

    raw: bytes
    message_id: str
    # The envelope: the address it goes from, and every To, Cc and Bcc address.
    sender: str
    recipients: tuple[str, ...]

    def message(self) -> EmailMessage:
        """Parse the bytes, for an adapter that must take the message apart (or a test)."""
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def from_message(message: EmailMessage) -> OutgoingMail:
    """Make the outgoing mail of a message whose Message-ID the caller has set."""
    message_id = message.get("Message-ID")
    if not message_id:
        raise ValueError("a message must have a Message-ID before it is sent")
    return from_bytes(message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
                      str(message_id).strip())


def from_bytes(payload: bytes, message_id: str) -> OutgoingMail:
    """Make the outgoing mail of a message's bytes, reading its envelope from its headers."""
    raw = payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = _head(raw)
    fields = {name: _values(pattern, head) for name, pattern in _ADDRESSES.items()}
    recipients = _addresses([*fields["To"], *fields["Cc"], *fields["Bcc"]])
    return OutgoingMail(raw, message_id, parseaddr(" ".join(fields["From"]))[1], recipients)


def _addresses(values: list[str]) -> tuple[str, ...]:
    """Return the addresses of address-list fields.

    A list of bare addresses (what the outbox writes in To and Cc) is split at its commas;
    anything with names, comments, quotes or groups is read by the email package.
    """
    if not any(special in value for value in values for special in '"()<>:;\\'):
        return tuple(address.strip() for value in values for address in value.split(",")
                     if address.strip())
    return tuple(address for _name, address in getaddresses(values) if address)


def dated(mail: OutgoingMail, when: datetime) -> OutgoingMail:
    """Return the mail with its Date header replaced by when, in the header block's bytes."""
    value = format_datetime(when)
    # The date is ours, but it still goes through the same refusal of line breaks.
    if not safe_text(value):
        raise UnsafeHeader("a Date header holds a line break")
    line = f"Date: {value}\r\n".encode("ascii")
    head = _head(mail.raw)
    found = _DATE.search(head)
    if found is None:
        raw = line + mail.raw
    else:
        raw = mail.raw[:found.start()] + line + mail.raw[found.end():]
    return OutgoingMail(raw, mail.message_id, mail.sender, mail.recipients)


def _head(raw: bytes) -> bytes:
    """Return the header block: everything up to and including the first empty line's CRLF."""
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[:end + 2]


def _values(pattern: re.Pattern[bytes], head: bytes) -> list[str]:
    """Return the unfolded values of every field the pattern matches in the header block."""
    values = []
    for found in pattern.finditer(head):
        text = found.group(0).decode("utf-8", "replace")
        values.append(" ".join(text.partition(":")[2].split()))
    return values
