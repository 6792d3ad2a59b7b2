"""The outbox's message as the email package built it before compose: the reference to match."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from bot.kernel.headers import check_headers
from bot.kernel.mailbox import EMAIL_POLICY, OUTBOX_KEY_HEADER
from bot.kernel.outbox import Attachment, display_name, one_line


def email_package_mail(
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
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    auto_submitted: str = "auto-generated",
) -> bytes:
    """Return the bytes enqueue_mail stored before compose, built by the same code it ran."""
    message = EmailMessage(policy=EMAIL_POLICY)
    message["From"] = formataddr((display_name(sender_name), sender))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message[OUTBOX_KEY_HEADER] = key
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
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
