"""Outgoing email composed as RFC 5322 and MIME bytes, every header line made by one builder."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Protocol
from urllib.parse import quote, unquote_to_bytes

from bot.kernel.headers import MAX_LINE, UNSAFE, UnsafeHeader, safe_text
from bot.kernel.mailbox import OUTBOX_KEY_HEADER

# RFC 5322 section 2.1.1: a line should be at most 78 characters where it can be folded.
FOLD_AT = 78
# RFC 2047 section 2: an encoded word is at most 75 characters, "=?utf-8?q?" and "?=" included.
MAX_ENCODED_WORD = 75
# The part of an encoded word that is not its text: "=?utf-8?b?" and "?=".
_ENCODED_WORD_FRAME = 12
# An encoded word this short still holds any one character, so a line with less room is folded.
_SMALLEST_ENCODED_WORD = 24
# Encoded words in a display name are kept short enough to follow "From: " on a 78-character line.
_NAME_WORD = 60
# RFC 5322 section 3.6.8: a field name is printable ASCII other than the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]+")
# The names already found good: the same dozen come again in every message.
_CHECKED_NAMES: set[str] = set()
# What no header may hold, once decoded (bot.kernel.headers.UNSAFE: CR, LF and NUL).
_UNSAFE = re.compile(f"[{''.join(UNSAFE)}]")
# Text lines a 7bit body may hold are at most 998 characters (RFC 5322 section 2.1.1).
_LONG_LINE = re.compile(rf"[^\n]{{{MAX_LINE + 1}}}")
# What a reader takes for an encoded word (RFC 2047), read leniently, as the email package does.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?([^?]*)\?=")
# A parameter value in RFC 2231's extended form, with its charset on the first section only.
_EXTENDED = re.compile(r"\*(?:\d+\*)?=\s*(?:([^'\s;]*)'[^'\s;]*')?([^\s;]*)")
# RFC 2045 section 5.1: the specials (tspecials) that make a parameter value need quotes.
_TOKEN = re.compile(r"[!#-'*+.0-9A-Z^-~-]+")
# A word left as it is: in text any ASCII, and in a display name an RFC 5322 atom.
_ASCII = re.compile(r"[\x00-\x7f]*")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]*")
# RFC 2822 specials in a display name (those of email.utils.formataddr) make it a quoted string.
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# RFC 2231 section 7 attribute-char: what an extended parameter value keeps unescaped.
_ATTRIBUTE_SAFE = "!#$&+-.^_`|~"
# RFC 2047 section 5 (3): the characters a "Q" encoded word may hold as they are, in any header.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = ["_" if byte == 0x20 else chr(byte) if byte in _Q_SAFE else f"={byte:02X}"
           for byte in range(256)]
_Q_LENGTH = [len(encoded) for encoded in _Q_BYTE]


class AttachedFile(Protocol):
    """A file sent with an email (bot.kernel.outbox.Attachment is one)."""

    @property
    def filename(self) -> str:
        """The file's name as the recipient sees it."""

    @property
    def content(self) -> bytes:
        """The file's bytes."""

    @property
    def maintype(self) -> str:
        """The first half of its MIME type."""

    @property
    def subtype(self) -> str:
        """The second half of its MIME type."""

    @property
    def method(self) -> str | None:
        """An iCalendar method (REQUEST, CANCEL), which makes the file a meeting message."""


def compose_mail(
    *,
    sender: str,
    sender_name: str,
    to: Sequence[str],
    subject: str,
    date: datetime,
    message_id: str,
    key: str,
    text: str,
    html: str | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[AttachedFile] = (),
    in_reply_to: str | None = None,
    auto_submitted: str = "auto-generated",
) -> bytes:
    """Return the message as bytes with LF line ends, as the outbox keeps it.

    The text, then the HTML and any meeting messages, are the alternatives; other files make
    a multipart/mixed around them. Every header line goes through header_field.
    """
    head = [
        header_field("From", _mailbox(sender_name, sender)),
        header_field("To", ", ".join(_recipient(address) for address in to)),
    ]
    if cc:
        head.append(header_field("Cc", ", ".join(_recipient(address) for address in cc)))
    head += [
        header_field("Subject", subject, text=True),
        header_field("Date", format_datetime(date)),
        header_field("Message-ID", message_id),
        header_field("Auto-Submitted", auto_submitted),
        header_field("X-Auto-Response-Suppress", "All"),
        # The key is text to the email package too: one made from a bounce's recipient may be
        # long or not ASCII, and then goes as encoded words rather than being refused.
        header_field(OUTBOX_KEY_HEADER, key, text=True),
    ]
    # An id too long for its line (over 985 characters) is left off, as one out of form is.
    if in_reply_to and len(in_reply_to) <= MAX_LINE - len("In-Reply-To: "):
        head += [header_field("In-Reply-To", in_reply_to), header_field("References", in_reply_to)]
    head.append(header_field("MIME-Version", "1.0"))
    # The boundaries are made from the Message-ID, so the same message is always the same bytes.
    seed = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()[:24]
    alternatives = [_text_part("plain", text)]
    if html is not None:
        alternatives.append(_text_part("html", html))
    for meeting in [attachment for attachment in attachments if attachment.method]:
        alternatives.append(_text_part("calendar", meeting.content.decode("utf-8"),
                                       method=meeting.method or ""))
    body = (alternatives[0] if len(alternatives) == 1
            else _multipart("alternative", alternatives, seed + ".a"))
    files = [_file_part(attachment) for attachment in attachments if not attachment.method]
    if files:
        body = _multipart("mixed", [body, *files], seed + ".m")
    return ("".join(head) + body).encode("ascii")


def header_field(name: str, value: str, *, text: bool = False) -> str:
    """Return one header field, folded, with its line end; refuse one holding a line break.

    The name and the value as a reader decodes it (encoded words, RFC 2231 parameters) may hold
    no CR, LF or NUL. Lines are folded at spaces to stay within 78 characters where they can,
    and never pass 998. Only text (unstructured, like Subject) may hold non-ASCII, which goes
    as RFC 2047 encoded words; structured values come here already encoded.
    """
    if name not in _CHECKED_NAMES:
        if _FIELD_NAME.fullmatch(name) is None:
            raise UnsafeHeader(f"the header name {name!r} is not one RFC 5322 allows")
        _CHECKED_NAMES.add(name)
    if _UNSAFE.search(value) or (("=?" in value or "*=" in value)
                                 and _UNSAFE.search(_decoded(value))):
        raise UnsafeHeader(f"the {name} header of an outgoing message holds a line break")
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT and value.isascii():
        return line + "\n"
    return _folded(name, value, text)


def _mailbox(name: str, address: str) -> str:
    """Return a display name and address as RFC 5322 writes them, the name quoted or encoded."""
    if not address.isascii():
        # An address that is not ASCII cannot be sent without SMTPUTF8; its local part goes as
        # an encoded word, as the email package wrote it, and its delivery failure is reported.
        local, _at, domain = address.rpartition("@")
        address = f"{' '.join(_encoded_words(local, MAX_ENCODED_WORD))}@{domain}"
    if not name:
        return address
    if not name.isascii():
        # Only the words that need it are encoded: readers (Python's among them) that keep the
        # space between two encoded words in a name then read the name as it was.
        words: list[str] = []
        for plain, run in _runs(name, _ATOM, _NAME_WORD):
            words += [run] if plain else _encoded_words(run, _NAME_WORD)
        return f"{' '.join(words)} <{address}>"
    if _SPECIALS.search(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{name} <{address}>"


def _recipient(address: str) -> str:
    """Return one To or Cc entry: a plain ASCII one as it is, any other through _mailbox."""
    if address.isascii():
        return address
    # Nothing is stripped, so a line break anywhere still reaches the header's check.
    name, bracket, angled = address.rpartition("<")
    if not bracket:
        return _mailbox("", address)
    return _mailbox(name.strip(" "), angled.removesuffix(">"))


def _encoded_words(text: str, width: int) -> list[str]:
    """Return text as UTF-8 encoded words of at most width characters each (RFC 2047)."""
    words = []
    position = 0
    as_base64 = _prefers_base64(text)
    while position < len(text):
        word, position = _encoded_word(text, position, width, as_base64)
        words.append(word)
    return words


def _folded(name: str, value: str, text: bool) -> str:
    """Fold a field at its spaces, putting non-ASCII and overlong runs of text into words."""
    lines = []
    line = f"{name}:"
    longest = MAX_LINE - len(name) - 2
    words = value.split(" ")
    # Most values are ASCII words that each fit a line: every one of them is plain.
    if value.isascii() and max(map(len, words)) <= longest:
        runs = [(True, word) for word in words]
    else:
        runs = _runs(value, _ASCII, longest)
    if not text and not all(plain for plain, _run in runs):
        raise UnsafeHeader(f"the {name} header holds a word that is not ASCII or is longer than"
                           " a line may be")
    for plain, run in runs:
        if plain:
            # A fold goes before a space, never right after the name or before another space.
            if run and len(line) + 1 + len(run) > FOLD_AT and len(line) > len(name) + 1:
                lines.append(line)
                line = ""
            line += " " + run
            continue
        position = 0
        as_base64 = _prefers_base64(run)
        while position < len(run):
            room = FOLD_AT - len(line) - 1
            if room < _SMALLEST_ENCODED_WORD:
                lines.append(line)
                line, room = "", FOLD_AT - 1
            word, position = _encoded_word(run, position, min(room, MAX_ENCODED_WORD),
                                           as_base64)
            line += " " + word
    lines.append(line)
    return "\n".join(lines) + "\n"


def _runs(value: str, plain_word: re.Pattern[str], longest: int) -> list[tuple[bool, str]]:
    """Split a value at its spaces into plain words and runs of words to encode.

    A word is plain if it matches plain_word and fits a line. Spaces between words in one run
    are encoded with them, because a reader drops the space between two encoded words; an
    empty word (two spaces) joins the run before it for that reason.
    """
    runs: list[tuple[bool, str]] = []
    pending: list[str] = []
    for word in value.split(" "):
        if len(word) > longest or plain_word.fullmatch(word) is None or (pending and not word):
            pending.append(word)
            continue
        if pending:
            runs.append((False, " ".join(pending)))
            pending = []
        runs.append((True, word))
    if pending:
        runs.append((False, " ".join(pending)))
    return runs


def _prefers_base64(text: str) -> bool:
    """Say whether B encoding writes the text shorter than Q, as the email package chooses."""
    data = text.encode("utf-8")
    return sum(map(_Q_LENGTH.__getitem__, data)) > (len(data) + 2) // 3 * 4


def _encoded_word(text: str, start: int, width: int, as_base64: bool) -> tuple[str, int]:
    """Encode characters of text from start into one word of at most width characters.

    A word holds whole characters only, and at least one; return it and where the next begins.
    """
    room = width - _ENCODED_WORD_FRAME
    end = start
    used = 0
    if as_base64:
        # Base64 writes each three bytes as four characters.
        limit = room // 4 * 3
        while end < len(text):
            size = len(text[end].encode("utf-8"))
            if used + size > limit and end > start:
                break
            used += size
            end += 1
        encoded = base64.b64encode(text[start:end].encode("utf-8")).decode("ascii")
        return f"=?utf-8?b?{encoded}?=", end
    pieces = []
    while end < len(text):
        piece = "".join(_Q_BYTE[byte] for byte in text[end].encode("utf-8"))
        if used + len(piece) > room and end > start:
            break
        pieces.append(piece)
        used += len(piece)
        end += 1
    return f"=?utf-8?q?{''.join(pieces)}?=", end


def _decoded(value: str) -> str:
    """Return a value as a lenient reader decodes it: encoded words and RFC 2231 values undone.

    The raw bytes are kept beside each decoding, so a line break shows in either.
    """
    decoded = _ENCODED_WORD.sub(_decoded_word, value)
    sections = _EXTENDED.findall(value)
    if sections:
        charset = next((charset for charset, _text in sections if charset), "utf-8")
        data = b"".join(unquote_to_bytes(section.strip('"')) for _charset, section in sections)
        decoded += " " + _as_text(data, charset)
    return decoded


def _decoded_word(found: re.Match[str]) -> str:
    charset, encoding, encoded = found.groups()
    raw = encoded.encode("utf-8", "replace")
    try:
        data = (binascii.a2b_qp(raw, header=True) if encoding in "qQ"
                else base64.b64decode(raw + b"===", validate=False))
    except (binascii.Error, ValueError):
        return found.group(0)
    return _as_text(data, charset)


def _as_text(data: bytes, charset: str) -> str:
    """Decode bytes in a declared charset (or Latin-1 when it is unknown), raw bytes beside."""
    try:
        decoded = data.decode(charset.partition("*")[0], "replace")
    except (LookupError, UnicodeError, ValueError):
        decoded = ""
    return decoded + data.decode("latin-1")


def _text_part(subtype: str, text: str, method: str | None = None) -> str:
    """Return a text part: UTF-8, 7bit when it can be, else quoted-printable.

    Line ends become LF and the text ends with one, as the email package's set_content does.
    """
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    if body.isascii() and "\x00" not in body and _LONG_LINE.search(body) is None:
        encoding = "7bit"
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")
    method_parameter = "" if method is None else f"; {_parameter('method', method)}"
    return (header_field("Content-Type", f'text/{subtype}{method_parameter}; charset="utf-8"')
            + header_field("Content-Transfer-Encoding", encoding) + "\n" + body)


def _file_part(attachment: AttachedFile) -> str:
    """Return a file as an attachment part, base64 in lines of 76 characters."""
    return (header_field("Content-Type", f"{attachment.maintype}/{attachment.subtype}")
            + header_field("Content-Transfer-Encoding", "base64")
            + header_field("Content-Disposition",
                           f"attachment; {_parameter('filename', attachment.filename, True)}")
            + "\n" + base64.encodebytes(attachment.content).decode("ascii"))


def _parameter(attribute: str, value: str, quoted: bool = False) -> str:
    """Return a MIME parameter: a token, a quoted string, or RFC 2231's UTF-8 form.

    A value that is not ASCII goes in RFC 2231's form, in sections short enough for a line.
    """
    if value.isascii() and safe_text(value):
        if not quoted and _TOKEN.fullmatch(value):
            return f"{attribute}={value}"
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{attribute}="{escaped}"'
    whole = quote(value, safe=_ATTRIBUTE_SAFE)
    single = f"{attribute}*=utf-8''{whole}"
    if len(single) < FOLD_AT - 2:
        return single
    # Each section holds whole characters, so none splits the bytes of one.
    sections: list[str] = []
    current = "utf-8''"
    for character in value:
        escaped = quote(character, safe=_ATTRIBUTE_SAFE)
        if len(current) + len(escaped) > FOLD_AT - len(attribute) - 10:
            sections.append(current)
            current = ""
        current += escaped
    sections.append(current)
    return "; ".join(f"{attribute}*{number}*={section}"
                     for number, section in enumerate(sections))


def _multipart(subtype: str, parts: list[str], seed: str) -> str:
    """Return a multipart entity laid out as the email package's generator writes one."""
    boundary = f"=_{seed}"
    attempt = 0
    # "=_" never occurs in quoted-printable or base64, but a 7bit part might hold anything.
    while any(f"--{boundary}" in part for part in parts):
        attempt += 1
        boundary = f"=_{seed}{attempt}"
    delimiter = f"\n--{boundary}\n"
    return (header_field("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')
            + f"\n--{boundary}\n" + delimiter.join(parts) + f"\n--{boundary}--\n")
