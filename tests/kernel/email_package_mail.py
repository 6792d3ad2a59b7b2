"""The outbox's message as the email package built it before compose: the reference to match."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from bot.kernel.headers import UnsafeHeader, safe_text
from bot.kernel.mailbox import EMAIL_POLICY, OUTBOX_KEY_HEADER
from bot.kernel.outbox import Attachment, display_name, one_line


def email_package_mail(**values: Any) -> bytes:
    """Return the bytes enqueue_mail stored before compose, built by the same code it ran.

    It takes compose_mail's arguments.
    """
    attachments: Sequence[Attachment] = values.get("attachments", ())
    cc: Sequence[str] = values.get("cc", ())
    in_reply_to: str | None = values.get("in_reply_to")
    html: str | None = values.get("html")
    message = EmailMessage(policy=EMAIL_POLICY)
    message["From"] = formataddr((display_name(values["sender_name"]), values["sender"]))
    message["To"] = ", ".join(values["to"])
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = one_line(values["subject"])
    message["Date"] = format_datetime(values["date"])
    message["Message-ID"] = values["message_id"]
    message["Auto-Submitted"] = values.get("auto_submitted", "auto-generated")
    message["X-Auto-Response-Suppress"] = "All"
    message[OUTBOX_KEY_HEADER] = values["key"]
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(values["text"])
    if html is not None:
        message.add_alternative(html, subtype="html")
    for meeting in [attachment for attachment in attachments if attachment.method]:
        message.add_alternative(meeting.content.decode("utf-8"), subtype="calendar",
                                params={"method": meeting.method or ""})
    for attachment in [attachment for attachment in attachments if not attachment.method]:
        message.add_attachment(
            attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
            filename=one_line(attachment.filename) or "attachment",
        )
    check_headers(message)
    return message.as_bytes()


# The last look the old code took before queueing, kept with it as the reference.
def check_headers(message: EmailMessage) -> None:
    """Raise UnsafeHeader if any header, once decoded, holds a CR, LF or NUL.

    The email package folds and encodes what it is given, but a value that decodes to a line
    break (an encoded word, an RFC 2231 parameter) is written out raw by the Python this bot
    runs on; this is the last look before a message is queued.
    """
    for name, value in message.items():
        if not safe_text(str(value)):
            raise UnsafeHeader(f"the {name} header of an outgoing message holds a line break")
    for part in message.walk():
        filename = part.get_filename()
        if filename is not None and not safe_text(filename):
            raise UnsafeHeader("an attachment's file name holds a line break")
