"""The mailbox protocol every mail adapter implements, and the neutral types it speaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from bot.kernel.outgoing import OutgoingMail


class _CachedHeaderRegistry(HeaderRegistry):
    """The standard header registry, but making each header's class once, not on every use."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


# The modern email policy (RFC-compliant parsing) that the bot reads messages with (it composes
# its own with bot/kernel/compose.py); the standard one makes header classes over again.
EMAIL_POLICY = policy.default.clone(header_factory=_CachedHeaderRegistry())

# The header that carries an outbox row's idempotency key on every message we send, so that a
# send whose outcome is unknown can be found again in Sent by key as well as by Message-ID.
OUTBOX_KEY_HEADER = "X-RRBot-Key"


@dataclass(frozen=True)
class FetchedMail:
    """One message found in the inbox: its stable id on the server and its RFC 5322 bytes."""

    server_id: str
    raw: bytes
    # When the server says the message arrived in the mailbox (timezone-aware), if it says.
    arrived_at: datetime | None = None


class MailboxError(Exception):
    """A mailbox failure described in one line a council IT officer can act on."""


class MailboxAuthError(MailboxError):
    """The server refused the credentials (wrong password, expired secret, no permission)."""


class MessageNotFound(MailboxError):
    """The message is not where the mailbox was asked to find it: someone moved or deleted it."""


class TransientMailboxError(MailboxError):
    """A failure worth retrying later: throttling, a dropped connection, a busy server."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorStore(Protocol):
    """Durable key-value state an adapter may keep between runs (a Graph delta link, say)."""

    def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""
        ...

    def set(self, key: str, value: str) -> None:
        """Store value under key, durably."""
        ...


class MemoryCursorStore:
    """A CursorStore held in memory, for tools and tests; the engine supplies a database one."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""
        return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        """Store value under key."""
        self._values[key] = value


@runtime_checkable
class Mailbox(Protocol):
    """The partnership mailbox as the engine sees it, whatever server is behind it.

    Fetching is at-least-once: every message still in the inbox (not yet moved by
    mark_processed) may be returned again by a later fetch, and the engine de-duplicates on
    (mailbox name, server id) and on Message-ID. Nothing is ever deleted by an adapter.
    """

    # The name that identifies this mailbox in the database (its address, as configured).
    name: str

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield the messages in the inbox, including any another client marked as read."""
        ...

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move a fetched message out of the inbox into folder, creating the folder if needed.

        Moving a message already moved does nothing: the engine may repeat it after a crash.
        """
        ...

    def send(self, message: EmailMessage) -> None:
        """Send a message whose Message-ID the caller has set, and keep a copy in Sent."""
        ...

    def send_raw(self, mail: OutgoingMail) -> None:
        """Send the message's bytes as they are to its envelope recipients; keep it in Sent."""
        ...

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID (angle brackets included) is in Sent."""
        ...

    def wait_for_mail(self, timeout: float) -> bool:
        """Block until new mail may have arrived (push) or timeout seconds pass (polling).

        Returns True when the server signalled new mail, False on timeout.
        """
        ...

    def check(self) -> list[str]:
        """Connect and return one line per folder the bot will use; raise MailboxError if not."""
        ...

    def close(self) -> None:
        """Release connections; the adapter may be used again afterwards (it reconnects)."""
        ...


@runtime_checkable
class Refiling(Protocol):
    """A mailbox that can move a message between two of the bot's folders.

    Releasing a quarantined message marks it in the database; the engine's next step moves
    its copy from Quarantine to Processed (bot/engine/refile.py). A mailbox without this
    leaves the copy where it is.
    """

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move the message (found by server id, or by Message-ID) from source to target.

        Moving a message already in target does nothing, so a move repeated after a crash is
        harmless; raise MessageNotFound if it is in neither (or there is nothing to find it
        by), and MailboxError for any other failure.
        """
        ...
