"""An unreachable mailbox, watched over time: people are emailed once per outage."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine as DatabaseEngine

from bot.config import Config
from bot.kernel import audit
from bot.mail.notify import notify
from bot.store.db import transaction
from bot.store.models import CursorState

OUTAGE_KEY = "mailbox_outage"


def watch_mailbox(
    database: DatabaseEngine, config: Config, now: datetime, error: str | None
) -> bool:
    """Note whether this step read the mailbox; say whether an outage alert was queued now.

    The outage's start is kept in the database, so a restart neither forgets it nor alerts
    again: the alert's outbox key names the outage, and a key already queued is not queued
    twice. A successful read ends the outage.
    """
    settings = config.settings
    key = f"{OUTAGE_KEY}:{settings.partnership.key}"
    with transaction(database) as session:
        outage = session.get(CursorState, key)
        if error is None:
            if outage is not None:
                session.delete(outage)
                audit.record(session, settings.partnership.key, "bot", "mailbox_recovered", now,
                             since=outage.value)
            return False
        if outage is None:
            session.add(CursorState(key=key, value=now.isoformat()))
            return False
        since = datetime.fromisoformat(outage.value)
        if now - since < timedelta(minutes=settings.service.mailbox_stale_minutes):
            return False
        manager = settings.business_manager
        alert = settings.service.alert_email
        row = notify(session, config, "mailbox_alert",
                     to=[manager.email, *([alert] if alert else [])],
                     key=f"{key}:{outage.value}", now=now,
                     values=dict(recipient_names=manager.name, since=since,
                                 mailbox=settings.mailbox.address, error=error[:300]))
        return row.created_at == now
