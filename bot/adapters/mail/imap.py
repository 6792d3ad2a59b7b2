"""The partnership mailbox over IMAP (reading, filing) and SMTP (sending), with TLS verified."""

from __future__ import annotations

import base64
import functools
import imaplib
import itertools
import logging
import re
import select
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import TypeVar

from bot.kernel.mailbox import FetchedMail, MailboxAuthError, MailboxError, TransientMailboxError

log = logging.getLogger(__name__)

# Hosts on which an unencrypted SMTP or IMAP connection is acceptable: this machine only.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# RFC 2177 asks clients to leave and re-enter IDLE at least every 29 minutes.
IDLE_RESTART_SECONDS = 25 * 60

# The longest line imaplib itself accepts from a server.
_MAX_LINE = 1_000_000

# How much to read from the socket at a time.
_READ_CHUNK = 65536

# A UID in a FETCH response.
_UID = re.compile(rb"UID (\d+)", re.IGNORECASE)

# The server's arrival time in a FETCH response (RFC 3501 date-time, e.g. " 7-Jul-1996 ...").
_INTERNALDATE = re.compile(
    rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) '
    rb'([+-])(\d{2})(\d{2})"',
    re.IGNORECASE,
)

# Month names as IMAP writes them, whatever the locale of this process.
_MONTHS = {
    name: number
    for number, name in enumerate(
        (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN",
         b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"),
        start=1,
    )
}

# An untagged response that says the selected folder has new mail.
_NEW_MAIL = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)

# The first personal namespace in a NAMESPACE response: its prefix and its delimiter.
_PERSONAL_NAMESPACE = re.compile(rb'^\(\("((?:[^"\\]|\\.)*)" (?:"((?:[^"\\]|\\.)+)"|NIL)\)')

# A server's response text inside imaplib's error, without the bytes repr and response code.
_RESPONSE_TEXT = re.compile(r"^b?['\"]?(?:\[[^\]]*\]\s*)?(.*?)['\"]?$")

_Result = TypeVar("_Result")


def _buffer(connection: imaplib.IMAP4) -> bytearray:
    """Return the connection's read buffer, creating it on first use."""
    buffer: bytearray | None = connection.__dict__.get("_rrbot_buffer")
    if buffer is None:
        buffer = bytearray()
        connection.__dict__["_rrbot_buffer"] = buffer
    return buffer


def _fill(connection: imaplib.IMAP4) -> None:
    """Read what the server has sent into the buffer, waiting up to the socket's timeout."""
    data = connection.sock.recv(_READ_CHUNK)
    if not data:
        raise imaplib.IMAP4.abort("socket error: EOF")
    _buffer(connection).extend(data)


def _readline(connection: imaplib.IMAP4) -> bytes:
    """Return one line from the server, as imaplib's readline does."""
    buffer = _buffer(connection)
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            line = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            return line
        if len(buffer) > _MAX_LINE:
            raise imaplib.IMAP4.error(f"got more than {_MAX_LINE} bytes without a line end")
        _fill(connection)


def _read(connection: imaplib.IMAP4, size: int) -> bytes:
    """Return exactly size bytes from the server, as imaplib's read does."""
    buffer = _buffer(connection)
    while len(buffer) < size:
        _fill(connection)
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _wait_readable(connection: imaplib.IMAP4, timeout: float) -> bool:
    """Wait up to timeout seconds for the server to send something; say whether it did."""
    if _buffer(connection):
        return True
    sock = connection.sock
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], max(timeout, 0.0))
    return bool(readable)


class _ImapConnection(imaplib.IMAP4):
    """imaplib over a buffer of our own, so that IDLE can wait for the server with a deadline.

    imaplib reads through socket.makefile(), which cannot be used again after a read times
    out; reading the socket directly lets select() say when a line is waiting.
    """

    def readline(self) -> bytes:
        """Return one line from the server."""
        return _readline(self)

    def read(self, size: int) -> bytes:
        """Return size bytes from the server."""
        return _read(self, size)


class _ImapSslConnection(imaplib.IMAP4_SSL):
    """imaplib over implicit TLS, reading through the same buffer as _ImapConnection."""

    def readline(self) -> bytes:
        """Return one line from the server."""
        return _readline(self)

    def read(self, size: int) -> bytes:
        """Return size bytes from the server."""
        return _read(self, size)


def _imap_utf7(name: str) -> str:
    """Encode a folder name in IMAP's modified UTF-7 (RFC 3501 section 5.1.3)."""
    encoded: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            text = base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ",")
            encoded.append(f"&{text}-")
            pending.clear()

    for character in name:
        if 0x20 <= ord(character) <= 0x7E:
            flush()
            encoded.append("&-" if character == "&" else character)
        else:
            pending.append(character)
    flush()
    return "".join(encoded)


def _quote(text: str) -> str:
    """Return text as an IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_text(error: BaseException | bytes | str | None) -> str:
    """Return the human part of a server's reply, lower-cased at the start, in one line."""
    if isinstance(error, bytes):
        text = error.decode("utf-8", "replace")
    else:
        text = str(error) if error is not None else ""
    text = " ".join(text.split())
    match = _RESPONSE_TEXT.match(text)
    if match:
        text = match.group(1)
    text = text.strip().rstrip(".")
    if not text:
        return "no reason given"
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _first_text(data: Sequence[object]) -> str:
    """Return the response text imaplib gives with a NO or BAD reply."""
    for item in data:
        if isinstance(item, bytes | str):
            return _server_text(item)
    return "no reason given"


def _socket_reason(error: BaseException) -> str:
    """Describe a network error in a few words."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return _server_text(error) or type(error).__name__


class ImapSmtpMailbox:
    """The partnership mailbox on any IMAP server, sending through that provider's SMTP server.

    Uses the standard library's imaplib and smtplib. Every message in the inbox is fetched
    with BODY.PEEK[] (its read flag is never touched) until mark_processed moves it; server
    ids are "UIDVALIDITY:UID". One instance is meant to be used from one thread.
    """

    def __init__(
        self,
        *,
        imap_host: str,
        username: str,
        password: str | None = None,
        oauth2_token: str | Callable[[], str] | None = None,
        imap_port: int = 993,
        imap_security: str = "ssl",
        smtp_host: str | None = None,
        smtp_port: int = 587,
        smtp_security: str = "starttls",
        ca_file: str | Path | None = None,
        smtp_username: str | None = None,
        smtp_password: str | None = None,
        smtp_oauth2_token: str | Callable[[], str] | None = None,
        smtp_ca_file: str | Path | None = None,
        inbox: str = "INBOX",
        sent_folder: str = "Sent",
        folders: Sequence[str] = ("Processed", "Quarantine"),
        save_to_sent: bool = True,
        use_idle: bool = True,
        poll_seconds: float = 60.0,
        name: str | None = None,
        timeout: float = 30.0,
        fetch_batch: int = 25,
    ) -> None:
        if imap_security not in ("ssl", "starttls"):
            raise ValueError(f"imap_security must be 'ssl' or 'starttls', not {imap_security!r}")
        if smtp_security not in ("ssl", "starttls", "plain"):
            raise ValueError(
                f"smtp_security must be 'ssl', 'starttls' or 'plain', not {smtp_security!r}"
            )
        self.smtp_host = smtp_host or imap_host
        if smtp_security == "plain" and self.smtp_host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"smtp_security 'plain' sends the password unencrypted, so it is only allowed "
                f"for a server on this machine, not {self.smtp_host}"
            )
        if (password is None) == (oauth2_token is None):
            raise ValueError("give exactly one of password and oauth2_token")
        if smtp_password is not None and smtp_oauth2_token is not None:
            raise ValueError("give at most one of smtp_password and smtp_oauth2_token")
        self.imap_host = imap_host
        self.imap_port = imap_port
        self.imap_security = imap_security
        self.smtp_port = smtp_port
        self.smtp_security = smtp_security
        self.username = username
        self._password = password
        self._oauth2_token = oauth2_token
        self.ca_file = str(ca_file) if ca_file is not None else None
        # SMTP logs in as its own account when given one, and otherwise as the IMAP account.
        self.smtp_username = smtp_username or username
        if smtp_password is None and smtp_oauth2_token is None:
            self._smtp_password, self._smtp_oauth2_token = password, oauth2_token
        else:
            self._smtp_password, self._smtp_oauth2_token = smtp_password, smtp_oauth2_token
        # SMTP trusts its own CA file when given one, and otherwise the IMAP one.
        self.smtp_ca_file = str(smtp_ca_file) if smtp_ca_file is not None else self.ca_file
        self.inbox = inbox
        self.sent_folder = sent_folder
        self.folders = tuple(folders)
        self.save_to_sent = save_to_sent
        self.use_idle = use_idle
        self.poll_seconds = poll_seconds
        self.name = name or username
        self.timeout = timeout
        self.fetch_batch = max(1, fetch_batch)
        self._imap: imaplib.IMAP4 | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._namespace_prefix = ""
        self._selected: str | None = None
        self._selected_readonly = False
        self._selected_validity: int | None = None
        self._known_folders: set[str] = set()
        # The inbox's UIDVALIDITY and highest UID at the last fetch, to tell what is new.
        self._last_fetch: tuple[int, int] | None = None
        # Message-IDs of fetched messages by server id, to move one after a renumbering.
        self._message_ids: dict[str, str] = {}
        # UIDs flagged \Deleted on a server without UIDPLUS, which must not be fetched again.
        self._moved_without_expunge: set[tuple[int, int]] = set()
        # Sent messages whose copy could not yet be filed in Sent: (Message-ID, bytes).
        self._pending_sent: list[tuple[str, bytes]] = []
        self._tags = itertools.count(1)

    # Connections.

    @property
    def _imap_where(self) -> str:
        return f"{self.imap_host}:{self.imap_port}"

    @property
    def _smtp_where(self) -> str:
        return f"{self.smtp_host}:{self.smtp_port}"

    def _tls_context(self, protocol: str = "IMAP") -> ssl.SSLContext:
        """Return a TLS context that verifies the server (against its ca_file if one is given)."""
        ca_file = self._ca_file_for(protocol)
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise MailboxError(
                f"ca_file {ca_file} could not be read as a PEM CA certificate: "
                f"{_socket_reason(error)}"
            ) from None

    def _ca_file_for(self, protocol: str) -> str | None:
        """Return the CA file that the IMAP or the SMTP server's certificate is checked against."""
        return self.smtp_ca_file if protocol == "SMTP" else self.ca_file

    def _certificate_error(self, protocol: str, where: str, error: ssl.SSLError) -> MailboxError:
        """Describe a certificate that failed verification, and what to do about it."""
        detail = getattr(error, "verify_message", None) or _server_text(error.reason)
        ca_file = self._ca_file_for(protocol)
        if ca_file:
            fix = f"check that ca_file {ca_file} is the CA that signed it"
        else:
            fix = "set ca_file to the CA certificate that signed it, or add that CA to the system"
            fix += " trust store"
        return MailboxError(
            f"the certificate of {protocol} server {where} could not be verified ({detail}); {fix}"
        )

    def _token(self) -> str:
        """Return the current OAuth2 access token."""
        token = self._oauth2_token
        return token() if callable(token) else str(token)

    def _xoauth2_string(self) -> str:
        """Return the SASL XOAUTH2 initial response for the user and the current token."""
        return f"user={self.username}\x01auth=Bearer {self._token()}\x01\x01"

    def _smtp_xoauth2_string(self) -> str:
        """Return the SASL XOAUTH2 initial response for the SMTP account and its current token."""
        token = self._smtp_oauth2_token
        current = token() if callable(token) else str(token)
        return f"user={self.smtp_username}\x01auth=Bearer {current}\x01\x01"

    def _connect(self) -> imaplib.IMAP4:
        """Open, secure and log in an IMAP connection, raising MailboxError subclasses."""
        where = self._imap_where
        context = self._tls_context()
        connection: imaplib.IMAP4
        try:
            if self.imap_security == "ssl":
                connection = _ImapSslConnection(
                    self.imap_host, self.imap_port, ssl_context=context, timeout=self.timeout
                )
            else:
                connection = _ImapConnection(self.imap_host, self.imap_port, timeout=self.timeout)
                if "STARTTLS" not in connection.capabilities:
                    connection.shutdown()
                    raise MailboxError(
                        f"IMAP server {where} does not offer STARTTLS; set imap_security to 'ssl'"
                        f" and use its TLS port"
                    )
                connection.starttls(ssl_context=context)
        except ssl.SSLCertVerificationError as error:
            raise self._certificate_error("IMAP", where, error) from None
        except ssl.SSLError as error:
            raise MailboxError(
                f"TLS with IMAP server {where} failed ({_server_text(error.reason)}); check"
                f" imap_port and imap_security"
            ) from None
        except socket.gaierror as error:
            raise MailboxError(
                f"IMAP server name {self.imap_host} could not be resolved ({error.strerror})"
            ) from None
        except (OSError, imaplib.IMAP4.abort) as error:
            raise TransientMailboxError(
                f"IMAP server {where} is not reachable: {_socket_reason(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            raise MailboxError(
                f"IMAP server {where} refused the connection: {_server_text(error)}"
            ) from None
        self._login(connection)
        return connection

    def _login(self, connection: imaplib.IMAP4) -> None:
        """Log in with the password or the OAuth2 token and learn the server's capabilities."""
        where = self._imap_where
        try:
            if self._oauth2_token is not None:
                replies = itertools.count()
                initial = self._xoauth2_string().encode()

                # The first challenge gets the token; a later one carries the error to ack.
                def respond(challenge: bytes) -> bytes:
                    return initial if next(replies) == 0 else b""

                connection.authenticate("XOAUTH2", respond)
            else:
                connection.login(self.username, self._password or "")
            typ, data = connection.capability()
            raw_capabilities = data[0] if data and isinstance(data[0], bytes) else b""
            self._capabilities = frozenset(raw_capabilities.decode().upper().split())
            if "NAMESPACE" in self._capabilities:
                self._namespace_prefix = self._personal_prefix(connection)
        except imaplib.IMAP4.abort as error:
            self._shutdown(connection)
            raise TransientMailboxError(
                f"IMAP server {where} closed the connection during login: {_server_text(error)}"
            ) from None
        except imaplib.IMAP4.error as error:
            self._shutdown(connection)
            raise MailboxAuthError(
                f"IMAP login to {where} as {self.username} was refused: {_server_text(error)}"
            ) from None
        except OSError as error:
            self._shutdown(connection)
            raise TransientMailboxError(
                f"IMAP server {where} dropped the connection during login: {_socket_reason(error)}"
            ) from None
        log.debug("Logged in to IMAP %s as %s", where, self.username)

    @staticmethod
    def _personal_prefix(connection: imaplib.IMAP4) -> str:
        """Return the prefix of the personal namespace (empty, or e.g. "INBOX.")."""
        typ, data = connection.namespace()
        if typ != "OK" or not data or not isinstance(data[0], bytes):
            return ""
        match = _PERSONAL_NAMESPACE.match(data[0])
        return match.group(1).decode() if match else ""

    @staticmethod
    def _shutdown(connection: imaplib.IMAP4) -> None:
        """Close a connection without waiting for the server."""
        try:
            connection.shutdown()
        except OSError:
            pass

    def _connection(self) -> imaplib.IMAP4:
        """Return the open IMAP connection, connecting first if there is none."""
        if self._imap is None:
            self._imap = self._connect()
        return self._imap

    def _drop(self) -> None:
        """Forget the current connection after a failure."""
        connection, self._imap = self._imap, None
        self._selected = None
        self._selected_validity = None
        if connection is not None:
            self._shutdown(connection)

    def _run(self, action: str, work: Callable[[imaplib.IMAP4], _Result]) -> _Result:
        """Do work on the connection; if it was dropped, reconnect and try once more."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                return work(connection)
            except (imaplib.IMAP4.abort, OSError) as error:
                self._drop()
                if attempt == 2:
                    raise TransientMailboxError(
                        f"IMAP connection to {self._imap_where} failed while trying to {action}: "
                        f"{_socket_reason(error)}"
                    ) from None
                log.debug(
                    "IMAP connection to %s dropped (%s); reconnecting",
                    self._imap_where,
                    _socket_reason(error),
                )
            except imaplib.IMAP4.error as error:
                raise MailboxError(
                    f"IMAP server {self._imap_where} refused to {action}: {_server_text(error)}"
                ) from None
        raise AssertionError("unreachable")

    # Folders.

    def _full_name(self, folder: str) -> str:
        """Return the server's name for a folder, inside the personal namespace."""
        if folder.upper() == "INBOX":
            return "INBOX"
        prefix = self._namespace_prefix
        if prefix and not folder.startswith(prefix):
            return prefix + folder
        return folder

    def _mailbox_argument(self, folder: str) -> str:
        """Return a folder name ready to put in an IMAP command."""
        return _quote(_imap_utf7(self._full_name(folder)))

    def _select(self, connection: imaplib.IMAP4, folder: str, readonly: bool = False) -> int:
        """Select a folder (unless it already is) and return its UIDVALIDITY."""
        full = self._full_name(folder)
        if (
            self._selected == full
            and self._selected_validity is not None
            and (readonly or not self._selected_readonly)
        ):
            return self._selected_validity
        self._selected = None
        self._selected_validity = None
        typ, data = connection.select(self._mailbox_argument(folder), readonly=readonly)
        if typ != "OK":
            raise _FolderMissing(_first_text(data))
        _, values = connection.response("UIDVALIDITY")
        validity = int(values[-1]) if values and values[-1] else 0
        self._selected = full
        self._selected_readonly = readonly
        self._selected_validity = validity
        return validity

    def _folder_exists(self, connection: imaplib.IMAP4, folder: str) -> bool:
        """Say whether the server has this folder."""
        typ, data = connection.list('""', self._mailbox_argument(folder))
        return typ == "OK" and any(item is not None for item in data)

    def _ensure_folder(self, connection: imaplib.IMAP4, folder: str) -> None:
        """Create and subscribe to a folder if the server does not have it yet."""
        full = self._full_name(folder)
        if full in self._known_folders:
            return
        if not self._folder_exists(connection, folder):
            typ, data = connection.create(self._mailbox_argument(folder))
            text = _first_text(data)
            if typ != "OK" and "alreadyexists" not in text.lower().replace(" ", ""):
                raise MailboxError(
                    f"IMAP server {self._imap_where} refused to create folder {full}: {text}"
                )
            connection.subscribe(self._mailbox_argument(folder))
            log.debug("Created IMAP folder %s", full)
        self._known_folders.add(full)

    # Fetching.

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox by UID, read or unread, without marking it read."""
        self._file_pending_sent_quietly()
        validity, uids = self._run("search the inbox", self._search_inbox)
        for start in range(0, len(uids), self.fetch_batch):
            chunk = uids[start : start + self.fetch_batch]
            yield from self._run(
                "fetch messages from the inbox",
                functools.partial(self._fetch_chunk, validity=validity, uids=chunk),
            )

    def _search_inbox(self, connection: imaplib.IMAP4) -> tuple[int, list[int]]:
        """Return the inbox's UIDVALIDITY and the UIDs of every message in it."""
        validity = self._select_inbox(connection, refresh=True)
        connection.untagged_responses.pop("SEARCH", None)
        typ, data = connection.uid("SEARCH", "ALL")
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._imap_where} refused to search the inbox: {_first_text(data)}"
            )
        uids = sorted(int(uid) for item in data if isinstance(item, bytes) for uid in item.split())
        self._last_fetch = (validity, max(uids, default=0))
        return validity, [uid for uid in uids if (validity, uid) not in self._moved_without_expunge]

    def _select_inbox(self, connection: imaplib.IMAP4, refresh: bool = False) -> int:
        """Select the inbox for reading and moving; return its UIDVALIDITY.

        With refresh, an inbox that was already selected is brought up to date with NOOP:
        servers only take in newly delivered mail at such sync points, not during SEARCH.
        """
        if refresh and self._selected == self._full_name(self.inbox):
            connection.noop()
        try:
            return self._select(connection, self.inbox)
        except _FolderMissing as missing:
            raise MailboxError(
                f"IMAP server {self._imap_where} has no folder {self.inbox} for user "
                f"{self.username}: {missing}"
            ) from None

    def _fetch_chunk(
        self, connection: imaplib.IMAP4, validity: int, uids: list[int]
    ) -> list[FetchedMail]:
        """Fetch some messages' full bytes with BODY.PEEK[], leaving their flags alone."""
        current = self._select_inbox(connection)
        if current != validity:
            raise TransientMailboxError(
                f"the inbox on {self._imap_where} was renumbered (UIDVALIDITY changed) during a"
                f" fetch; fetch again"
            )
        connection.untagged_responses.pop("FETCH", None)
        typ, data = connection.uid(
            "FETCH", ",".join(map(str, uids)), "(UID INTERNALDATE BODY.PEEK[])"
        )
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._imap_where} refused to fetch messages: {_first_text(data)}"
            )
        found = _parse_fetch_dated(data)
        fetched: list[FetchedMail] = []
        for uid in uids:
            if uid not in found:
                # The message was moved or expunged by someone else since the search.
                continue
            raw, arrived_at = found[uid]
            server_id = f"{validity}:{uid}"
            self._remember_message_id(server_id, raw)
            fetched.append(FetchedMail(server_id=server_id, raw=raw, arrived_at=arrived_at))
        log.debug("Fetched %d of %d messages from %s", len(fetched), len(uids), self.inbox)
        return fetched

    def _remember_message_id(self, server_id: str, raw: bytes) -> None:
        """Keep a fetched message's Message-ID, to find it again if the inbox is renumbered."""
        if len(self._message_ids) > 50_000:
            self._message_ids.clear()
        header_end = raw.find(b"\r\n\r\n")
        headers = BytesHeaderParser(policy=default_policy).parsebytes(
            raw if header_end < 0 else raw[: header_end + 4]
        )
        message_id = str(headers.get("Message-ID", "")).strip()
        if message_id:
            self._message_ids[server_id] = message_id

    # Filing.

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move the message into folder (UID MOVE, or COPY and flag where MOVE is missing)."""
        validity_text, _, uid_text = server_id.partition(":")
        if not (validity_text.isdigit() and uid_text.isdigit()):
            raise MailboxError(f"{server_id!r} is not an IMAP server id (UIDVALIDITY:UID)")
        validity, uid = int(validity_text), int(uid_text)

        def move(connection: imaplib.IMAP4) -> None:
            current = self._select_inbox(connection)
            uids = [uid]
            if current != validity:
                uids = self._find_renumbered(connection, server_id, current)
            if not uids:
                return
            self._ensure_folder(connection, folder)
            self._move(connection, current, uids, folder)

        self._run(f"move a message to {folder}", move)

    def _find_renumbered(
        self, connection: imaplib.IMAP4, server_id: str, current: int
    ) -> list[int]:
        """Find, by Message-ID, a message whose server id predates an inbox renumbering."""
        message_id = self._message_ids.get(server_id)
        if message_id is None:
            raise MailboxError(
                f"message {server_id} cannot be moved: the inbox on {self._imap_where} was "
                f"renumbered (UIDVALIDITY is now {current}); fetch again for new ids"
            )
        return self._search_message_id(connection, message_id)

    def _move(self, connection: imaplib.IMAP4, validity: int, uids: list[int], folder: str) -> None:
        """Move messages out of the selected inbox into folder, never deleting anything."""
        uid_set = ",".join(map(str, uids))
        target = self._mailbox_argument(folder)
        if "MOVE" in self._capabilities:
            typ, data = connection.uid("MOVE", uid_set, target)
        else:
            typ, data = connection.uid("COPY", uid_set, target)
            if typ == "OK":
                connection.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
                if "UIDPLUS" in self._capabilities:
                    connection.uid("EXPUNGE", uid_set)
                else:
                    # Without UIDPLUS an EXPUNGE could remove other clients' deletions too.
                    self._moved_without_expunge.update((validity, uid) for uid in uids)
        if typ != "OK":
            # The folder may have been deleted since we last looked; look again next time.
            self._known_folders.discard(self._full_name(folder))
            raise MailboxError(
                f"IMAP server {self._imap_where} refused to move message(s) {uid_set} to "
                f"{folder}: {_first_text(data)}"
            )
        log.debug("Moved UID(s) %s to %s", uid_set, folder)

    def _search_message_id(self, connection: imaplib.IMAP4, message_id: str) -> list[int]:
        """Return the UIDs in the selected folder whose Message-ID is exactly message_id."""
        wanted = message_id.strip()
        if not wanted.isascii():
            return []
        connection.untagged_responses.pop("SEARCH", None)
        typ, data = connection.uid("SEARCH", "HEADER", "Message-ID", _quote(wanted))
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._imap_where} refused to search by Message-ID: "
                f"{_first_text(data)}"
            )
        candidates = [int(uid) for item in data if isinstance(item, bytes) for uid in item.split()]
        if not candidates:
            return []
        # HEADER search matches substrings, so compare each candidate's header exactly.
        connection.untagged_responses.pop("FETCH", None)
        typ, data = connection.uid(
            "FETCH",
            ",".join(map(str, candidates)),
            "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
        )
        parser = BytesHeaderParser(policy=default_policy)
        exact: list[int] = []
        for uid, header in _parse_fetch(data).items():
            if str(parser.parsebytes(header).get("Message-ID", "")).strip() == wanted:
                exact.append(uid)
        return sorted(exact)

    # Sending.

    def send(self, message: EmailMessage) -> None:
        """Send through SMTP, then file a copy in Sent (unless the server does that itself)."""
        message_id = message.get("Message-ID")
        if message_id is None:
            raise ValueError("a message must have a Message-ID before it is sent")
        raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        refused = self._smtp_send(message)
        if self.save_to_sent:
            # The message has gone; remember it until its copy is safely in Sent.
            self._pending_sent.append((str(message_id).strip(), raw))
            self._file_pending_sent_quietly()
        if refused:
            described = "; ".join(
                f"{address} ({code} {_server_text(text)})" for address, (code, text) in refused
            )
            raise MailboxError(
                f"message {message_id} was sent, but SMTP server {self._smtp_where} refused "
                f"some recipients: {described}"
            )

    def _smtp_send(self, message: EmailMessage) -> list[tuple[str, tuple[int, bytes]]]:
        """Hand the message to the SMTP server; return any recipients it refused."""
        where = self._smtp_where
        try:
            client = self._smtp_connect()
            with client:
                refused = client.send_message(message)
        except ssl.SSLCertVerificationError as error:
            raise self._certificate_error("SMTP", where, error) from None
        except smtplib.SMTPAuthenticationError as error:
            raise MailboxAuthError(
                f"SMTP login to {where} as {self.smtp_username} was refused: "
                f"{_server_text(error.smtp_error)}"
            ) from None
        except smtplib.SMTPRecipientsRefused as error:
            described = "; ".join(
                f"{address} ({code} {_server_text(text)})"
                for address, (code, text) in error.recipients.items()
            )
            raise MailboxError(
                f"SMTP server {where} refused every recipient: {described}"
            ) from None
        except smtplib.SMTPResponseException as error:
            text = f"{error.smtp_code} {_server_text(error.smtp_error)}"
            if 400 <= error.smtp_code < 500:
                raise TransientMailboxError(
                    f"SMTP server {where} asked to try later: {text}"
                ) from None
            raise MailboxError(f"SMTP server {where} refused the message: {text}") from None
        except ssl.SSLError as error:
            raise MailboxError(
                f"TLS with SMTP server {where} failed ({_server_text(error.reason)}); check"
                f" smtp_port and smtp_security"
            ) from None
        except socket.gaierror as error:
            raise MailboxError(
                f"SMTP server name {self.smtp_host} could not be resolved ({error.strerror})"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise TransientMailboxError(
                f"SMTP server {where} is not reachable: {_socket_reason(error)}"
            ) from None
        log.debug("Sent message %s through SMTP %s", message.get("Message-ID"), where)
        return list(refused.items())

    def _smtp_connect(self) -> smtplib.SMTP:
        """Open, secure and log in an SMTP connection."""
        if self.smtp_security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, context=self._tls_context("SMTP"),
                timeout=self.timeout,
            )
        else:
            client = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout)
        try:
            client.ehlo()
            if self.smtp_security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailboxError(
                        f"SMTP server {self._smtp_where} does not offer STARTTLS; set "
                        f"smtp_security to 'ssl' and use its TLS port"
                    )
                client.starttls(context=self._tls_context("SMTP"))
                client.ehlo()
            if self._smtp_oauth2_token is not None:
                # smtplib asks for the initial response with no challenge; a later challenge
                # carries the server's error, which is acknowledged with an empty reply.
                def respond(challenge: bytes | None = None) -> str:
                    return self._smtp_xoauth2_string() if challenge is None else ""

                client.auth("XOAUTH2", respond, initial_response_ok=True)
            elif client.has_extn("auth"):
                client.login(self.smtp_username, self._smtp_password or "")
        except BaseException:
            client.close()
            raise
        return client

    def _file_pending_sent_quietly(self) -> None:
        """File the copies of sent messages in Sent; leave them pending if the server fails."""
        while self._pending_sent:
            message_id, raw = self._pending_sent[0]
            try:
                self._run(
                    "file a copy in Sent",
                    functools.partial(self._append_to_sent, message_id=message_id, raw=raw),
                )
            except MailboxError as error:
                log.debug("Copy of %s not yet filed in Sent: %s", message_id, error)
                return
            self._pending_sent.pop(0)

    def _append_to_sent(self, connection: imaplib.IMAP4, message_id: str, raw: bytes) -> None:
        """APPEND a sent message to Sent unless an earlier attempt already put it there."""
        self._ensure_folder(connection, self.sent_folder)
        self._select(connection, self.sent_folder, readonly=True)
        if self._search_message_id(connection, message_id):
            return
        typ, data = connection.append(
            self._mailbox_argument(self.sent_folder),
            r"(\Seen)",
            imaplib.Time2Internaldate(time.time()),
            raw,
        )
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._imap_where} refused to file a copy in {self.sent_folder}: "
                f"{_first_text(data)}"
            )
        log.debug("Filed a copy of %s in %s", message_id, self.sent_folder)

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in Sent (or about to be filed there)."""
        wanted = message_id.strip()
        self._file_pending_sent_quietly()
        if any(pending_id == wanted for pending_id, _ in self._pending_sent):
            return True

        def search(connection: imaplib.IMAP4) -> bool:
            try:
                self._select(connection, self.sent_folder, readonly=True)
            except _FolderMissing:
                return False
            return bool(self._search_message_id(connection, wanted))

        return self._run(f"search {self.sent_folder}", search)

    # Waiting.

    def wait_for_mail(self, timeout: float) -> bool:
        """Wait with IDLE when the server has it (else poll) until new mail or timeout."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._file_pending_sent_quietly()
        return self._run("wait for new mail", lambda connection: self._wait(connection, deadline))

    def _has_new_mail(self, connection: imaplib.IMAP4) -> bool:
        """Say whether the inbox holds a message with a UID above the last fetch's highest."""
        validity = self._select_inbox(connection, refresh=True)
        if self._last_fetch is None or self._last_fetch[0] != validity:
            typ, data = connection.uid("SEARCH", "ALL")
            return typ == "OK" and any(item for item in data if isinstance(item, bytes))
        highest = self._last_fetch[1]
        connection.untagged_responses.pop("SEARCH", None)
        typ, data = connection.uid("SEARCH", "UID", f"{highest + 1}:*")
        uids = [int(uid) for item in data if isinstance(item, bytes) for uid in item.split()]
        # "N:*" always includes the highest UID, even when it is below N.
        return typ == "OK" and any(uid > highest for uid in uids)

    def _wait(self, connection: imaplib.IMAP4, deadline: float) -> bool:
        """Return True once the inbox has new mail, or False at the deadline."""
        if self._has_new_mail(connection):
            return True
        if self.use_idle and "IDLE" in self._capabilities:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return False
                if self._idle(connection, min(deadline, now + IDLE_RESTART_SECONDS)):
                    return True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.poll_seconds, remaining))
            if self._has_new_mail(connection):
                return True

    def _idle(self, connection: imaplib.IMAP4, until: float) -> bool:
        """IDLE until the server reports new mail or until passes, then leave with DONE."""
        tag = f"RRB{next(self._tags)}".encode()
        connection.send(tag + b" IDLE\r\n")
        arrived = False
        while True:
            line = connection.readline()
            if line.startswith(b"+"):
                break
            if line.startswith(tag + b" "):
                raise imaplib.IMAP4.error(f"IDLE refused: {line.decode(errors='replace')}")
            arrived = arrived or self._is_new_mail(line)
        while not arrived:
            remaining = until - time.monotonic()
            if remaining <= 0 or not _wait_readable(connection, remaining):
                break
            arrived = self._is_new_mail(connection.readline())
        connection.send(b"DONE\r\n")
        while True:
            line = connection.readline()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise imaplib.IMAP4.error(f"IDLE ended badly: {line.decode(errors='replace')}")
                return arrived
            arrived = arrived or self._is_new_mail(line)

    @staticmethod
    def _is_new_mail(line: bytes) -> bool:
        """Say whether an untagged line announces new mail; raise if the server is leaving."""
        if line.upper().startswith(b"* BYE"):
            raise imaplib.IMAP4.abort(line.decode(errors="replace").strip())
        return bool(_NEW_MAIL.match(line))

    # Checking and closing.

    def check(self) -> list[str]:
        """Log in to IMAP and SMTP and return one line per folder the bot uses, and SMTP's."""
        lines: list[str] = []

        def inspect(connection: imaplib.IMAP4) -> None:
            extras = [name for name in ("IDLE", "MOVE", "UIDPLUS") if name in self._capabilities]
            lines.append(
                f"IMAP {self._imap_where} ({self.imap_security}): logged in as {self.username};"
                f" server offers {', '.join(extras) or 'none of IDLE, MOVE, UIDPLUS'}"
            )
            for folder in (self.inbox, *self.folders, self.sent_folder):
                full = self._full_name(folder)
                typ, data = connection.status(self._mailbox_argument(folder), "(MESSAGES)")
                if typ == "OK":
                    counted = re.search(rb"MESSAGES (\d+)", data[0] if data and data[0] else b"")
                    count = counted.group(1).decode() if counted else "?"
                    lines.append(f"{full}: exists ({count} messages)")
                elif folder == self.inbox:
                    raise MailboxError(
                        f"IMAP server {self._imap_where} has no folder {full} for "
                        f"{self.username}: {_first_text(data)}"
                    )
                else:
                    lines.append(f"{full}: missing (it will be created when first needed)")

        self._run("list folders", inspect)
        where = self._smtp_where
        try:
            with self._smtp_connect():
                pass
        except ssl.SSLCertVerificationError as error:
            raise self._certificate_error("SMTP", where, error) from None
        except smtplib.SMTPAuthenticationError as error:
            raise MailboxAuthError(
                f"SMTP login to {where} as {self.smtp_username} was refused: "
                f"{_server_text(error.smtp_error)}"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise TransientMailboxError(
                f"SMTP server {where} is not reachable: {_socket_reason(error)}"
            ) from None
        lines.append(f"SMTP {where} ({self.smtp_security}): ready to send as {self.smtp_username}")
        return lines

    def close(self) -> None:
        """File any pending Sent copies, log out and drop the connection; reuse reconnects."""
        self._file_pending_sent_quietly()
        connection, self._imap = self._imap, None
        self._selected = None
        self._selected_validity = None
        if connection is None:
            return
        try:
            connection.logout()
        except (imaplib.IMAP4.error, OSError):
            self._shutdown(connection)


class _FolderMissing(Exception):
    """The server has no folder by the requested name (SELECT answered NO)."""


def _parse_fetch(data: Sequence[object]) -> dict[int, bytes]:
    """Return the literal of each message in a UID FETCH response, by UID."""
    return {uid: literal for uid, (literal, _) in _parse_fetch_dated(data).items()}


def _parse_fetch_dated(data: Sequence[object]) -> dict[int, tuple[bytes, datetime | None]]:
    """Return the literal and INTERNALDATE (if asked for) of each message in a UID FETCH, by UID.

    imaplib gives (head, literal) tuples, with the UID and INTERNALDATE in the head or in the
    bytes item after the literal; unsolicited FLAGS updates from other clients come as plain
    bytes items.
    """
    found: dict[int, tuple[bytes, datetime | None]] = {}

    def finish(text: bytes, literal: bytes) -> None:
        match = _UID.search(text)
        if match:
            found[int(match.group(1))] = (literal, _internal_date(text))

    waiting: tuple[bytes, bytes] | None = None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            if waiting is not None:
                finish(*waiting)
                waiting = None
            head, literal = item
            if isinstance(head, bytes) and isinstance(literal, bytes):
                waiting = (head, literal)
        elif isinstance(item, bytes) and waiting is not None:
            # The rest of the response after the literal belongs to the same message.
            finish(waiting[0] + b" " + item, waiting[1])
            waiting = None
    if waiting is not None:
        finish(*waiting)
    return found


def _internal_date(text: bytes) -> datetime | None:
    """Return the INTERNALDATE in a FETCH response as a UTC instant, or None if there is none."""
    match = _INTERNALDATE.search(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
    number = _MONTHS.get(month.upper())
    if number is None:
        return None
    offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
    try:
        local = datetime(
            int(year), number, int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(-offset if sign == b"-" else offset),
        )
    except ValueError:
        return None
    return local.astimezone(UTC)
