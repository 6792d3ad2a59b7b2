"""One IMAP connection kept open: connecting, logging in, reconnecting once, and folders."""

from __future__ import annotations

import imaplib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import ClassVar, TypeVar

from bot.adapters.mail.imap_wire import (
    ImapConnection,
    ImapSslConnection,
    fetched_literals,
    first_text,
    modified_utf7,
    personal_prefix,
    quoted,
    uids_in,
)
from bot.adapters.mail.mail_server import Login, ServerEndpoint, server_text, socket_reason
from bot.kernel.mailbox import MailboxAuthError, MailboxError, TransientMailboxError

log = logging.getLogger(__name__)

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class ImapEndpoint(ServerEndpoint):
    """An IMAP server: implicit TLS ("ssl", port 993) or STARTTLS on the plain port."""

    protocol: ClassVar[str] = "IMAP"

    port: int = 993
    security: str = "ssl"

    def __post_init__(self) -> None:
        if self.security not in ("ssl", "starttls"):
            raise ValueError(f"imap_security must be 'ssl' or 'starttls', not {self.security!r}")


class FolderMissing(Exception):
    """The server has no folder by the requested name (SELECT answered NO)."""


class ImapSession:
    """An IMAP connection opened when first needed, with the folder it has selected.

    Work is run through run(), which reconnects once when the connection was dropped and turns
    imaplib's errors into MailboxError subclasses in one line.
    """

    def __init__(self, endpoint: ImapEndpoint, login: Login) -> None:
        self.endpoint = endpoint
        self.login = login
        # What the server said it can do after login (IDLE, MOVE, UIDPLUS, ...).
        self.capabilities: frozenset[str] = frozenset()
        self._connection: imaplib.IMAP4 | None = None
        self._namespace_prefix = ""
        self._selected: str | None = None
        self._selected_readonly = False
        self._selected_validity: int | None = None
        self._known_folders: set[str] = set()
        self._tags = itertools.count(1)

    def next_tag(self) -> bytes:
        """Return a command tag of our own, for commands imaplib does not send (IDLE)."""
        return f"RRB{next(self._tags)}".encode()

    # Connecting.

    def _connect(self) -> imaplib.IMAP4:
        """Open, secure and log in an IMAP connection, raising MailboxError subclasses."""
        endpoint = self.endpoint
        context = endpoint.tls_context()
        connection: imaplib.IMAP4
        try:
            if endpoint.security == "ssl":
                connection = ImapSslConnection(
                    endpoint.host, endpoint.port, ssl_context=context, timeout=endpoint.timeout
                )
            else:
                connection = ImapConnection(endpoint.host, endpoint.port, timeout=endpoint.timeout)
                if "STARTTLS" not in connection.capabilities:
                    connection.shutdown()
                    raise MailboxError(
                        f"IMAP server {endpoint.where} does not offer STARTTLS; set imap_security"
                        f" to 'ssl' and use its TLS port"
                    )
                connection.starttls(ssl_context=context)
        except (OSError, imaplib.IMAP4.abort) as error:
            raise endpoint.connection_error(error) from None
        except imaplib.IMAP4.error as error:
            raise MailboxError(
                f"IMAP server {endpoint.where} refused the connection: {server_text(error)}"
            ) from None
        self._log_in(connection)
        return connection

    def _log_in(self, connection: imaplib.IMAP4) -> None:
        """Log in with the password or the OAuth2 token and learn the server's capabilities."""
        where = self.endpoint.where
        try:
            if self.login.oauth2_token is not None:
                replies = itertools.count()
                initial = self.login.xoauth2().encode()

                # The first challenge gets the token; a later one carries the error to ack.
                def respond(challenge: bytes) -> bytes:
                    return initial if next(replies) == 0 else b""

                connection.authenticate("XOAUTH2", respond)
            else:
                connection.login(self.login.username, self.login.password or "")
            typ, reply = connection.capability()
            raw_capabilities = reply[0] if reply and isinstance(reply[0], bytes) else b""
            self.capabilities = frozenset(raw_capabilities.decode().upper().split())
            if "NAMESPACE" in self.capabilities:
                self._namespace_prefix = personal_prefix(connection)
        except imaplib.IMAP4.abort as error:
            _shutdown(connection)
            raise TransientMailboxError(
                f"IMAP server {where} closed the connection during login: {server_text(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            _shutdown(connection)
            raise MailboxAuthError(
                f"IMAP login to {where} as {self.login.username} was refused: {server_text(error)}"
            ) from None
        except OSError as error:
            _shutdown(connection)
            raise TransientMailboxError(
                f"IMAP server {where} dropped the connection during login: {socket_reason(error)}"
            ) from None
        log.debug("Logged in to IMAP %s as %s", where, self.login.username)

    def _open(self) -> imaplib.IMAP4:
        """Return the open IMAP connection, connecting first if there is none."""
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _drop(self) -> None:
        """Forget the current connection after a failure."""
        connection, self._connection = self._connection, None
        self._selected = None
        self._selected_validity = None
        if connection is not None:
            _shutdown(connection)

    def run(self, action: str, work: Callable[[imaplib.IMAP4], _Result]) -> _Result:
        """Do work on the connection; if it was dropped, reconnect and try once more."""
        where = self.endpoint.where
        for attempt in (1, 2):
            connection = self._open()
            try:
                return work(connection)
            except (imaplib.IMAP4.abort, OSError) as error:
                self._drop()
                if attempt == 2:
                    raise TransientMailboxError(
                        f"IMAP connection to {where} failed while trying to {action}: "
                        f"{socket_reason(error)}"
                    ) from None
                log.debug(
                    "IMAP connection to %s dropped (%s); reconnecting", where, socket_reason(error)
                )
            except imaplib.IMAP4.error as error:
                raise MailboxError(
                    f"IMAP server {where} refused to {action}: {server_text(error)}"
                ) from None
        raise AssertionError("unreachable")

    def log_out(self) -> None:
        """Log out and drop the connection; the next run() connects again."""
        connection, self._connection = self._connection, None
        self._selected = None
        self._selected_validity = None
        if connection is None:
            return
        try:
            connection.logout()
        except (imaplib.IMAP4.error, OSError):
            _shutdown(connection)

    # Folders.

    def full_name(self, folder: str) -> str:
        """Return the server's name for a folder, inside the personal namespace."""
        if folder.upper() == "INBOX":
            return "INBOX"
        prefix = self._namespace_prefix
        if prefix and not folder.startswith(prefix):
            return prefix + folder
        return folder

    def mailbox_argument(self, folder: str) -> str:
        """Return a folder name ready to put in an IMAP command."""
        return quoted(modified_utf7(self.full_name(folder)))

    def is_selected(self, folder: str) -> bool:
        """Say whether this folder is the one selected now."""
        return self._selected == self.full_name(folder)

    def select(self, connection: imaplib.IMAP4, folder: str, readonly: bool = False) -> int:
        """Select a folder (unless it already is) and return its UIDVALIDITY."""
        full = self.full_name(folder)
        if (
            self._selected == full
            and self._selected_validity is not None
            and (readonly or not self._selected_readonly)
        ):
            return self._selected_validity
        self._selected = None
        self._selected_validity = None
        typ, reply = connection.select(self.mailbox_argument(folder), readonly=readonly)
        if typ != "OK":
            raise FolderMissing(first_text(reply))
        _, values = connection.response("UIDVALIDITY")
        validity = int(values[-1]) if values and values[-1] else 0
        self._selected = full
        self._selected_readonly = readonly
        self._selected_validity = validity
        return validity

    def _folder_exists(self, connection: imaplib.IMAP4, folder: str) -> bool:
        """Say whether the server has this folder."""
        typ, reply = connection.list('""', self.mailbox_argument(folder))
        return typ == "OK" and any(line is not None for line in reply)

    def ensure_folder(self, connection: imaplib.IMAP4, folder: str) -> None:
        """Create and subscribe to a folder if the server does not have it yet."""
        full = self.full_name(folder)
        if full in self._known_folders:
            return
        if not self._folder_exists(connection, folder):
            typ, reply = connection.create(self.mailbox_argument(folder))
            text = first_text(reply)
            if typ != "OK" and "alreadyexists" not in text.lower().replace(" ", ""):
                raise MailboxError(
                    f"IMAP server {self.endpoint.where} refused to create folder {full}: {text}"
                )
            connection.subscribe(self.mailbox_argument(folder))
            log.debug("Created IMAP folder %s", full)
        self._known_folders.add(full)

    def forget_folder(self, folder: str) -> None:
        """Look for a folder again next time: it may have been deleted since we last looked."""
        self._known_folders.discard(self.full_name(folder))

    def search_message_id(self, connection: imaplib.IMAP4, message_id: str) -> list[int]:
        """Return the UIDs in the selected folder whose Message-ID is exactly message_id."""
        wanted = message_id.strip()
        if not wanted.isascii():
            return []
        connection.untagged_responses.pop("SEARCH", None)
        typ, reply = connection.uid("SEARCH", "HEADER", "Message-ID", quoted(wanted))
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self.endpoint.where} refused to search by Message-ID: "
                f"{first_text(reply)}"
            )
        candidates = uids_in(reply)
        if not candidates:
            return []
        # HEADER search matches substrings, so compare each candidate's header exactly.
        connection.untagged_responses.pop("FETCH", None)
        typ, reply = connection.uid(
            "FETCH",
            ",".join(map(str, candidates)),
            "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
        )
        parser = BytesHeaderParser(policy=default_policy)
        exact: list[int] = []
        for uid, header in fetched_literals(reply).items():
            if str(parser.parsebytes(header).get("Message-ID", "")).strip() == wanted:
                exact.append(uid)
        return sorted(exact)


def _shutdown(connection: imaplib.IMAP4) -> None:
    """Close a connection without waiting for the server."""
    try:
        connection.shutdown()
    except OSError:
        pass
