"""What the inbox says about the mail boundary: its shapes, and whether senders would verify.

`rrbot check-mailbox` prints these lines, so that a council's IT officer sets [mailbox]
boundary (and trusted_authserv_id, internal_relays) once and knows it works.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesParser

from bot.kernel.mailbox import EMAIL_POLICY, Mailbox
from bot.mail.auth_results import parse_auth_results
from bot.mail.boundary import MICROSOFT_ENTRY, boundary_results, received_hosts
from bot.mail.mime import raw_problem
from bot.settings import MailboxSettings

# How many of the newest messages in the inbox are looked at.
SURVEYED = 50
EXCHANGE_ONLINE = "Exchange Online Protection (no authserv-id)"
NO_RESULTS = "no Authentication-Results at all"


def recent_messages(mailbox: Mailbox, count: int = SURVEYED) -> list[bytes]:
    """Return the bytes of the newest messages in the inbox (it is only read, never changed)."""
    return [mail.raw for mail in deque(mailbox.fetch_new(), maxlen=count)]


def boundary_shape(message: Message) -> str:
    """Name the shape of the boundary that wrote a message's topmost Authentication-Results."""
    for name, value in message.raw_items():
        lowered = name.lower()
        if lowered == "received" and received_hosts(str(value))[1].endswith(MICROSOFT_ENTRY):
            return EXCHANGE_ONLINE
        if lowered == "authentication-results":
            authserv_id = parse_auth_results(str(value)).authserv_id
            return EXCHANGE_ONLINE if authserv_id is None else f"authserv-id {authserv_id}"
    return NO_RESULTS


def survey(settings: MailboxSettings, raws: Iterable[bytes]) -> list[str]:
    """Say, for each boundary shape the messages carry, whether their senders would verify."""
    by_shape: dict[str, list[Message]] = {}
    for raw in raws:
        if raw_problem(raw, settings.max_message_bytes) is not None:
            continue
        message = BytesParser(policy=EMAIL_POLICY).parsebytes(raw, headersonly=True)
        by_shape.setdefault(boundary_shape(message), []).append(message)
    if not by_shape:
        return ["no messages in the inbox to check the mail boundary with"]
    current = _describe(settings)
    lines = [f"mail boundary: {current}; the newest {sum(map(len, by_shape.values()))} "
             "message(s) in the inbox:"]
    for shape, messages in sorted(by_shape.items(), key=lambda item: -len(item[1])):
        trusted = _trusted(settings, messages)
        line = f"  {len(messages)} from {shape}: {trusted} would have their sender checked"
        suggestion = _suggestion(settings, shape, messages, trusted)
        lines.append(line + (f"; {suggestion}" if suggestion else ""))
    return lines


def _describe(settings: MailboxSettings) -> str:
    if settings.boundary == "authserv-id":
        relays = f", internal_relays {settings.internal_relays}" if (
            settings.internal_relays) else ""
        return (f'boundary = "authserv-id", trusted_authserv_id = '
                f'"{settings.trusted_authserv_id or ""}"{relays}')
    return f'boundary = "{settings.boundary}"'


def _trusted(settings: MailboxSettings, messages: list[Message]) -> int:
    return sum(1 for message in messages
               if (found := boundary_results(settings, message)).results or found.internal)


def _suggestion(
    settings: MailboxSettings, shape: str, messages: list[Message], trusted: int
) -> str:
    """Say which setting would let these messages' senders be checked, if another would."""
    if trusted == len(messages) or shape == NO_RESULTS:
        return "" if shape != NO_RESULTS else (
            "mail sent inside the council's own system carries none; senders there cannot "
            "be verified unless the boundary adds results")
    if shape == EXCHANGE_ONLINE:
        update: dict[str, object] = {"boundary": "exchange-online"}
        setting = 'set boundary = "exchange-online"'
    else:
        authserv_id = shape.removeprefix("authserv-id ")
        update = {"boundary": "authserv-id", "trusted_authserv_id": authserv_id}
        setting = f'set boundary = "authserv-id" and trusted_authserv_id = "{authserv_id}"'
    better = _trusted(settings.model_copy(update=update), messages)
    if better > trusted:
        return f"{setting} and {better} would"
    if trusted:
        return ("the others pass a relay the boundary setting does not know: add it to "
                "internal_relays")
    return "their results were written below a host outside the boundary (internal_relays?)"

