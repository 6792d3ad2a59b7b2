"""One call to tell people something by email: render the purpose's templates and queue it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import Config
from bot.kernel.outbox import Attachment, Queued, enqueue_mail
from bot.mail.render import render_email


def notify(
    session: Session,
    config: Config,
    purpose: str,
    *,
    to: Sequence[str],
    key: str,
    now: datetime,
    values: Mapping[str, Any],
    case_id: int | None = None,
    template: str | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    auto_submitted: str = "auto-generated",
    not_before: datetime | None = None,
    send_by: datetime | None = None,
) -> Queued:
    """Queue the email for purpose under the idempotency key, in the caller's transaction.

    templates/email/<template or purpose>.* are rendered with values and the partnership's
    signature. A key already queued returns that row.
    """
    settings = config.settings
    signature = settings.partnership.signature or settings.partnership.name
    # Every email may link to the cockpit's pages when it has a public address.
    cockpit = settings.web.base_url or ""
    email = render_email(template or purpose,
                         **{"signature": signature, "cockpit": cockpit, **values})
    return enqueue_mail(
        session, partnership=settings.partnership.key, key=key, purpose=purpose,
        sender=settings.mailbox.address, sender_name=settings.partnership.name, to=to, cc=cc,
        subject=email.subject, text=email.text, html=email.html, now=now, case_id=case_id,
        attachments=attachments, in_reply_to=in_reply_to, auto_submitted=auto_submitted,
        not_before=not_before, send_by=send_by,
    )
