"""IMAP on the wire: buffered connections, IDLE, folder names, and parsing the server's replies."""

from __future__ import annotations

import base64
import imaplib
import re
import select
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

from bot.adapters.mail.mail_server import server_text

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


def _buffer(connection: imaplib.IMAP4) -> bytearray:
    """Return the connection's read buffer, creating it on first use."""
    buffer: bytearray | None = connection.__dict__.get("_rrbot_buffer")
    if buffer is None:
        buffer = bytearray()
        connection.__dict__["_rrbot_buffer"] = buffer
    return buffer


def _fill(connection: imaplib.IMAP4) -> None:
    """Read what the server has sent into the buffer, waiting up to the socket's timeout."""
    received = connection.sock.recv(_READ_CHUNK)
    if not received:
        raise imaplib.IMAP4.abort("socket error: EOF")
    _buffer(connection).extend(received)


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
    chunk = bytes(buffer[:size])
    del buffer[:size]
    return chunk


def _wait_readable(connection: imaplib.IMAP4, timeout: float) -> bool:
    """Wait up to timeout seconds for the server to send something; say whether it did."""
    if _buffer(connection):
        return True
    sock = connection.sock
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], max(timeout, 0.0))
    return bool(readable)


class ImapConnection(imaplib.IMAP4):
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


class ImapSslConnection(imaplib.IMAP4_SSL):
    """imaplib over implicit TLS, reading through the same buffer as ImapConnection."""

    def readline(self) -> bytes:
        """Return one line from the server."""
        return _readline(self)

    def read(self, size: int) -> bytes:
        """Return size bytes from the server."""
        return _read(self, size)


def idle(connection: imaplib.IMAP4, tag: bytes, until: float) -> bool:
    """IDLE until the server reports new mail or until passes, then leave with DONE."""
    connection.send(tag + b" IDLE\r\n")
    arrived = False
    while True:
        line = connection.readline()
        if line.startswith(b"+"):
            break
        if line.startswith(tag + b" "):
            raise imaplib.IMAP4.error(f"IDLE refused: {line.decode(errors='replace')}")
        arrived = arrived or _is_new_mail(line)
    while not arrived:
        remaining = until - time.monotonic()
        if remaining <= 0 or not _wait_readable(connection, remaining):
            break
        arrived = _is_new_mail(connection.readline())
    connection.send(b"DONE\r\n")
    while True:
        line = connection.readline()
        if line.startswith(tag + b" "):
            if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                raise imaplib.IMAP4.error(f"IDLE ended badly: {line.decode(errors='replace')}")
            return arrived
        arrived = arrived or _is_new_mail(line)


def _is_new_mail(line: bytes) -> bool:
    """Say whether an untagged line announces new mail; raise if the server is leaving."""
    if line.upper().startswith(b"* BYE"):
        raise imaplib.IMAP4.abort(line.decode(errors="replace").strip())
    return bool(_NEW_MAIL.match(line))


def personal_prefix(connection: imaplib.IMAP4) -> str:
    """Return the prefix of the personal namespace (empty, or e.g. "INBOX.")."""
    typ, reply = connection.namespace()
    if typ != "OK" or not reply or not isinstance(reply[0], bytes):
        return ""
    match = _PERSONAL_NAMESPACE.match(reply[0])
    return match.group(1).decode() if match else ""


def modified_utf7(name: str) -> str:
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


def quoted(text: str) -> str:
    """Return text as an IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def first_text(reply: Sequence[object]) -> str:
    """Return the response text imaplib gives with a NO or BAD reply."""
    for line in reply:
        if isinstance(line, bytes | str):
            return server_text(line)
    return "no reason given"


def uids_in(reply: Sequence[object]) -> list[int]:
    """Return the UIDs a UID SEARCH reply lists, in the server's order."""
    return [int(uid) for line in reply if isinstance(line, bytes) for uid in line.split()]


def fetched_literals(reply: Sequence[object]) -> dict[int, bytes]:
    """Return the literal of each message in a UID FETCH response, by UID."""
    return {uid: literal for uid, (literal, _) in fetched_with_dates(reply).items()}


def fetched_with_dates(reply: Sequence[object]) -> dict[int, tuple[bytes, datetime | None]]:
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
    for part in reply:
        if isinstance(part, tuple) and len(part) == 2:
            if waiting is not None:
                finish(*waiting)
                waiting = None
            head, literal = part
            if isinstance(head, bytes) and isinstance(literal, bytes):
                waiting = (head, literal)
        elif isinstance(part, bytes) and waiting is not None:
            # The rest of the response after the literal belongs to the same message.
            finish(waiting[0] + b" " + part, waiting[1])
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
