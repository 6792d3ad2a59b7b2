"""Safe reading of inbound mail: size and structure limits, sender, body text, attachments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses

# A message nested deeper than this, or with more parts, is a MIME bomb, not correspondence.
MAX_DEPTH = 20
MAX_PARTS = 1000
# The headers the pipeline reads; one that cannot be decoded leaves it unable to decide.
KEY_HEADERS = ("From", "Sender", "To", "Subject", "Message-ID", "In-Reply-To", "References")
CONTENT_TYPE_LINE = re.compile(rb"(?im)^content-type[ \t]*:")
MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
ADDRESS_TOKEN = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
UNDECODABLE = re.compile("[\ufffd\udc80-\udcff\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class FoundAttachment:
    """A file attached to a message, decoded."""

    filename: str
    content: bytes
    content_type: str

    @property
    def suffix(self) -> str:
        """Return the file's suffix in lower case, with its dot ("" when it has none)."""
        name = self.filename.rsplit("/", 1)[-1]
        return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def raw_problem(raw: bytes, max_bytes: int) -> str | None:
    """Say why a message must not even be parsed (too big, far too many parts), or None."""
    if len(raw) > max_bytes:
        return f"the message is {len(raw)} bytes, over the limit of {max_bytes}"
    # Counting Content-Type lines is cheap and bounds the parts before the parser sees them.
    declared = len(CONTENT_TYPE_LINE.findall(raw))
    if declared > MAX_PARTS:
        return f"the message declares {declared} MIME parts, more than {MAX_PARTS}"
    return None


def structure_problem(message: Message) -> str | None:
    """Say why a parsed message is unsafe to handle (nesting, parts, headers), or None."""
    parts = 0
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > MAX_DEPTH:
            return f"MIME parts are nested more than {MAX_DEPTH} deep"
        if parts > MAX_PARTS:
            return f"the message has more than {MAX_PARTS} MIME parts"
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))
    return header_problem(message)


def header_problem(message: Message) -> str | None:
    """Say which header cannot be decoded, or None when every header reads cleanly."""
    for name, value in message.items():
        try:
            text = str(value)
        except Exception as exc:  # noqa: BLE001 - any header that will not read is a problem.
            return f"the {name} header cannot be decoded ({type(exc).__name__})"
        if name.title() in KEY_HEADERS and UNDECODABLE.search(text):
            return f"the {name} header cannot be decoded (invalid bytes or encoding)"
    return None


def sender_address(message: Message) -> str | None:
    """Return the single address in From, lower-cased, or None when there is not exactly one."""
    values = [value for name, value in message.raw_items() if name.lower() == "from"]
    if len(values) != 1:
        return None
    # Raw 8-bit bytes (an RFC 6532 address) arrive as surrogates; they are read as UTF-8.
    raw = str(values[0]).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = " ".join(raw.split())
    addresses = [address for _name, address in getaddresses([text]) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    address = addresses[0].strip().lower()
    # A second address hidden in the display name makes the header ambiguous: readers differ
    # on which one is the sender, so it counts as no sender at all.
    if any(other.lower() != address for other in ADDRESS_TOKEN.findall(text)):
        return None
    return address


def address_domain(address: str) -> str:
    """Return the domain of an address, lower-cased."""
    return address.rpartition("@")[2].lower()


def message_ids(value: object) -> list[str]:
    """Return every <id@host> in a header value (In-Reply-To, References), in order."""
    return MESSAGE_ID.findall(str(value)) if value else []


def header(message: Message, name: str) -> str:
    """Return a header's decoded value ("" when absent), parsed once per message.

    The modern email policy parses a header afresh on every access, which is most of the
    pipeline's time; handlers ask for the same few headers many times.
    """
    cache: dict[str, str] = message.__dict__.setdefault("_rrbot_headers", {})
    key = name.lower()
    if key not in cache:
        value = message.get(name) if name in message else None
        cache[key] = "" if value is None else str(value)
    return cache[key]


def subject(message: Message) -> str:
    """Return the subject on one line ("" when there is none)."""
    return " ".join(header(message, "Subject").split())


def body_text(message: EmailMessage) -> str:
    """Return the message's text: its plain part, else its HTML part with the tags removed."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        return ""
    text = str(content)
    if part.get_content_subtype() == "html":
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\n", text)
        text = re.sub(r"<[^>]+>", " ", text)
        text = text.replace("&nbsp;", " ").replace("&amp;", "&").replace("&#39;", "'")
    return text


# Where the quoted earlier message starts in a reply written by Outlook, Gmail or others.
QUOTE_START = re.compile(
    r"(?im)^(-{2,}\s*original message\s*-{2,}|_{10,}|from:\s.*$\n^(sent|date):|"
    r"on .{0,200}wrote:\s*$|le .{0,200}a écrit\s*:|am .{0,200}schrieb .{0,100}:)"
)


def new_text(message: EmailMessage) -> str:
    """Return the part of the body the sender wrote, without the quoted earlier message."""
    text = body_text(message)
    found = QUOTE_START.search(text)
    if found:
        text = text[:found.start()]
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def attachments(message: EmailMessage) -> list[FoundAttachment]:
    """Return the files attached to a message, leaving out inline images such as signatures."""
    found: list[FoundAttachment] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if filename is None and disposition != "attachment":
            continue
        if disposition == "inline" and part.get_content_maintype() == "image":
            continue
        if part.get_content_maintype() == "message":
            continue
        content = part.get_payload(decode=True)
        if not isinstance(content, bytes):
            continue
        found.append(FoundAttachment(filename or "attachment", content, part.get_content_type()))
    return found
