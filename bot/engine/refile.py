"""Released mail's mailbox copies moved out of Quarantine, driven by the marks in the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Engine as DatabaseEngine
from sqlmodel import col, select

from bot.config import Config
from bot.kernel import audit
from bot.kernel.mailbox import (
    Mailbox,
    MessageNotFound,
    Refiling,
    TransientMailboxError,
)
from bot.store.db import retry_on_conflict, transaction
from bot.store.models import InboundMessage

log = logging.getLogger(__name__)

# The most marked messages one step moves; any more wait for the next step.
REFILE_BATCH = 100


@dataclass(frozen=True)
class MarkedCopy:
    """A released message whose mailbox copy is still to move, as the mark names it."""

    inbound_id: int
    server_id: str
    message_id: str | None
    target: str


def refile_released(
    database: DatabaseEngine, config: Config, mailbox: Mailbox, now: datetime
) -> list[int]:
    """Move each released message's copy from Quarantine to its marked folder; return their ids.

    Releasing a message (from any interface) marks it (InboundMessage.refile_to) in the
    release's own transaction. Here each copy is moved first, with no transaction open, and its
    mark is cleared in a transaction of its own once the move has succeeded, so a crash between
    the two leaves the mark, and the next step's move finds the copy already in the target
    folder, which is not an error. A move that fails, however, is logged (its type only) and
    tried again at the next step; one the mailbox says is transient ends this step's moves. A
    copy in neither folder (moved or deleted by hand) is left where it is, its mark cleared and
    the audit trail told, so it is not looked for forever. A mailbox that cannot refile moves
    none.
    """
    if not isinstance(mailbox, Refiling):
        return []
    with transaction(database) as session:
        rows = session.exec(select(
            InboundMessage.id, InboundMessage.server_id, InboundMessage.message_id,
            InboundMessage.refile_to,
        ).where(
            # By mailbox and mark alone, so that the marked rows' own index serves the look.
            InboundMessage.mailbox == mailbox.name,
            col(InboundMessage.refile_to).is_not(None),
        ).order_by(col(InboundMessage.id)).limit(REFILE_BATCH)).all()
    marked = [MarkedCopy(inbound_id or 0, server_id, message_id, target or "")
              for inbound_id, server_id, message_id, target in rows]
    source = config.settings.mailbox.quarantine_folder
    done: list[int] = []
    for copy in marked:
        missing = False
        try:
            mailbox.refile(copy.server_id, copy.message_id, source, copy.target)
        except MessageNotFound:
            missing = True
        except Exception as exc:  # noqa: BLE001 - one copy's move never stops the step.
            # Only the error's type is logged: its text may name the sender or the subject.
            log.warning("the copy of inbound %s could not be moved from %s to %s: %s",
                        copy.inbound_id, source, copy.target, type(exc).__name__)
            if isinstance(exc, TransientMailboxError):
                break
            continue
        retry_on_conflict(partial(_clear_mark, database, copy, source, missing, now))
        done.append(copy.inbound_id)
    return done


def _clear_mark(
    database: DatabaseEngine, copy: MarkedCopy, source: str, missing: bool, now: datetime
) -> None:
    """Clear a copy's mark once it has moved, or audit that it was in neither folder."""
    with transaction(database) as session:
        row = session.get(InboundMessage, copy.inbound_id)
        # Another process may have cleared it first; then it has nothing more to say.
        if row is None or row.refile_to != copy.target:
            return
        row.refile_to = None
        session.add(row)
        if missing:
            log.info("the copy of inbound %s was in neither %s nor %s; left as is",
                     copy.inbound_id, source, copy.target)
            audit.record(session, row.partnership, "bot", "inbound_refile_skipped", now,
                         row.case_id, inbound_id=row.id,
                         reason=f"not found in {source} or {copy.target}; left as is")
