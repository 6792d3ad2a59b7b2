"""Quarantined mail: list it, show one message, release it as vouched for, or discard it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlmodel import col, select

from bot.commands.base import MANAGERS, CommandError, Context, require
from bot.engine.pipeline import InboundContext, handle, parse
from bot.kernel import audit
from bot.mail.mime import attachments, body_text, subject
from bot.mail.senders import verified_sender
from bot.store.models import Case, InboundMessage
from bot.store.statuses import InboundStatus, VouchedAs

# What anyone but the business manager is told when they try to see or settle quarantine.
MANAGER_ONLY = "Sorry, only the partnership's business manager can deal with quarantined mail."
# The most of a message's text `show` gives, so a hostile message cannot flood the terminal.
BODY_SHOWN = 20_000
# How release's --as choices read in a refusal.
CHOICES = ", ".join(kind.value for kind in VouchedAs)


@dataclass(frozen=True)
class ListQuarantine:
    """List the messages waiting in quarantine (and, if asked, those discarded)."""

    include_discarded: bool = False


@dataclass(frozen=True)
class ShowQuarantined:
    """Show one quarantined message: who sent it, when, why it was held, what it carries."""

    inbound_id: int


@dataclass(frozen=True)
class ReleaseQuarantined:
    """Put a quarantined message through the handlers again, vouched for as one kind."""

    inbound_id: int
    vouched_as: str
    reason: str = ""


@dataclass(frozen=True)
class DiscardQuarantined:
    """Set a quarantined message aside for good, with the reason; its bytes are kept."""

    inbound_id: int
    reason: str


@dataclass(frozen=True)
class QuarantinedLine:
    """One quarantined message as the list shows it."""

    inbound_id: int
    status: str
    received_at: datetime
    sender: str | None
    reason: str | None


@dataclass(frozen=True)
class QuarantinedDetail:
    """One quarantined message in full, for the business manager's terminal only."""

    inbound_id: int
    status: str
    received_at: datetime
    sender: str | None
    subject: str
    reason: str | None
    # What sender verification says of it now, and the Authentication-Results it carries.
    verification: str
    authentication_results: list[str]
    # Each attachment's file name and size in bytes.
    attachments: list[tuple[str, int]]
    body: str
    size: int
    discarded_reason: str | None = None


@dataclass(frozen=True)
class Released:
    """What the handlers made of a released message; its mailbox copy moves at the next step."""

    inbound_id: int
    kind: str
    case_reference: str | None
    detail: str
    # The folders its mailbox copy moves from and to at the bot's next step.
    folders: tuple[str, str]


@dataclass(frozen=True)
class Discarded:
    """A message set aside for good."""

    inbound_id: int
    reason: str


def list_quarantined(context: Context, request: ListQuarantine) -> list[QuarantinedLine]:
    """List the messages waiting for the business manager, oldest first."""
    require(context, MANAGERS, "quarantine-list", MANAGER_ONLY)
    statuses = [InboundStatus.QUARANTINED]
    if request.include_discarded:
        statuses.append(InboundStatus.DISCARDED)
    rows = context.session.exec(select(InboundMessage).where(
        InboundMessage.partnership == context.config.settings.partnership.key,
        col(InboundMessage.status).in_(statuses),
    ).order_by(col(InboundMessage.received_at), col(InboundMessage.id))).all()
    return [QuarantinedLine(row.id or 0, row.status, row.received_at, row.sender,
                            row.discarded_reason if row.discarded_reason else row.reason)
            for row in rows]


def show_quarantined(context: Context, request: ShowQuarantined) -> QuarantinedDetail:
    """Read one quarantined (or discarded) message for the business manager."""
    require(context, MANAGERS, "quarantine-show", MANAGER_ONLY)
    row = _row(context, request.inbound_id, {InboundStatus.QUARANTINED, InboundStatus.DISCARDED})
    try:
        message = parse(row.raw)
        files = attachments(message)
        text = body_text(message)
    except Exception as exc:  # noqa: BLE001 - a message that will not parse is still shown.
        return QuarantinedDetail(
            row.id or 0, row.status, row.received_at, row.sender, "", row.reason,
            f"the message could not be parsed: {type(exc).__name__}", [], [], "", len(row.raw),
            row.discarded_reason)
    shown = text[:BODY_SHOWN] + (f"\n[... {len(text) - BODY_SHOWN} more characters]"
                                 if len(text) > BODY_SHOWN else "")
    return QuarantinedDetail(
        row.id or 0, row.status, row.received_at, row.sender, subject(message), row.reason,
        verified_sender(context.config, message).reason, _authentication_results(message),
        [(found.filename, len(found.content)) for found in files], shown, len(row.raw),
        row.discarded_reason)


def release(context: Context, request: ReleaseQuarantined) -> Released:
    """Run a quarantined message through the handlers as vouched for by the person asking.

    Only the handler for the kind vouched for takes it (bot/engine/pipeline.takes_vouched); a
    message that handler cannot take either stays in quarantine and the refusal says why.
    """
    require(context, MANAGERS, "quarantine-release", MANAGER_ONLY)
    try:
        vouched_as = VouchedAs(request.vouched_as.strip().lower())
    except ValueError:
        raise CommandError(f"--as must be one of {CHOICES}, not {request.vouched_as!r}") from None
    row = _row(context, request.inbound_id, {InboundStatus.QUARANTINED})
    reason = " ".join(request.reason.split())[:500]
    held_because = row.reason
    # In a savepoint, so that a release the handler refuses leaves the row as it was even for
    # a caller that commits refusals (chat does).
    savepoint = context.session.begin_nested()
    row.vouched_by, row.vouched_as, row.vouched_at = context.actor.who, vouched_as, context.now
    row.vouched_reason = reason or None
    outcome = handle(InboundContext(context.session, context.now, context.config), row)
    if outcome.status != InboundStatus.PROCESSED:
        savepoint.rollback()
        raise CommandError(f"message {request.inbound_id} stays in quarantine: as a "
                           f"{vouched_as} it was not taken ({outcome.reason or outcome.kind})")
    savepoint.commit()
    row.status, row.kind, row.handled_at = outcome.status, outcome.kind, context.now
    row.reason = outcome.reason or None
    row.case_id = outcome.case_id or row.case_id
    # Whichever interface released it, the engine's next step moves its mailbox copy out of
    # Quarantine (bot/engine/refile.py): the mark commits with the release.
    row.refile_to = context.config.settings.mailbox.processed_folder
    context.session.add(row)
    audit.record(context.session, row.partnership, context.actor.who, "quarantine_released",
                 context.now, row.case_id, inbound_id=row.id, vouched_as=str(vouched_as),
                 reason=reason, held_because=held_because, kind=outcome.kind)
    case = context.session.get(Case, row.case_id) if row.case_id else None
    return Released(row.id or 0, outcome.kind, case.reference if case else None, outcome.reason,
                    (context.config.settings.mailbox.quarantine_folder, row.refile_to))


def discard(context: Context, request: DiscardQuarantined) -> Discarded:
    """Set a quarantined message aside with the reason; nothing is deleted, the digest drops it."""
    require(context, MANAGERS, "quarantine-discard", MANAGER_ONLY)
    reason = " ".join(request.reason.split())[:500]
    if not reason:
        raise CommandError("a message is only discarded with a reason: add --reason \"why\"")
    row = _row(context, request.inbound_id, {InboundStatus.QUARANTINED})
    row.status = InboundStatus.DISCARDED
    row.discarded_by, row.discarded_reason, row.discarded_at = (context.actor.who, reason,
                                                                context.now)
    context.session.add(row)
    audit.record(context.session, row.partnership, context.actor.who, "quarantine_discarded",
                 context.now, row.case_id, inbound_id=row.id, reason=reason,
                 held_because=row.reason)
    return Discarded(row.id or 0, reason)


def _row(context: Context, inbound_id: int, statuses: set[InboundStatus]) -> InboundMessage:
    row = context.session.exec(select(InboundMessage).where(
        InboundMessage.id == inbound_id,
        InboundMessage.partnership == context.config.settings.partnership.key,
    ).with_for_update()).first()
    if row is None:
        raise CommandError(f"there is no message {inbound_id}; `rrbot quarantine list` shows "
                           "the ones waiting")
    if row.status not in statuses:
        raise CommandError(f"message {inbound_id} is not in quarantine (it is {row.status})")
    return row


def _authentication_results(message: EmailMessage) -> list[str]:
    # Each header on one line, cut short: it is shown, never acted on.
    return [" ".join(str(value).split())[:300] for name, value in message.raw_items()
            if name.lower() == "authentication-results"]
