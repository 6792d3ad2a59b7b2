"""The ballots' emails: sign-off requests with the report, and alerts to the business manager."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from bot.ballots.links import vote_link
from bot.ballots.members import PARTNER_LABELS, members
from bot.ballots.views import OPTIONS, votes_on
from bot.config import Config
from bot.kernel.outbox import Attachment
from bot.mail.notify import notify
from bot.store.models import Ballot, Case, Document
from bot.store.statuses import BallotKind


def alert_manager(
    session: Session, config: Config, case: Case, ballot: Ballot, reason: str, now: datetime,
    key: str,
) -> None:
    """Email the business manager why a ballot needs her (at risk, no quorum, changes)."""
    settings = config.settings
    manager = settings.business_manager
    votes = votes_on(session, ballot)
    labels = {option.value: option.label for option in OPTIONS[ballot.kind]}
    notify(session, config, f"ballot_{reason}", template="ballot_alert", to=[manager.email],
           key=key, now=now, case_id=case.id, values=dict(
               recipient_name=manager.name, case_reference=case.reference,
               kind="partner decision" if ballot.kind == BallotKind.DECISION else
 "report sign-off",
               ballot=ballot.kind, reason=reason, closes_at=ballot.closes_at,
               needed=ballot.needed,
               votes=[(PARTNER_LABELS[vote.partner_key], vote.member_name or vote.member_email,
                       labels.get(vote.choice, vote.choice), vote.rationale) for vote in votes],
               waiting=[label for partner, label in PARTNER_LABELS.items()
                        if partner not in {vote.partner_key for vote in votes}]))


def ask_for_signoff(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    """Email each member the report version to sign off, attached where it is stored."""
    attachments = report_attachments(session, case, ballot.report_sha256 or "")
    for member in members(config):
        notify(session, config, "signoff_request", to=[member.email],
               key=signoff_request_key(case, ballot, member.email), now=now, case_id=case.id,
               attachments=attachments, values=dict(
                   recipient_name=member.name, case_reference=case.reference,
                   partner=PARTNER_LABELS[member.partner_key], role=member.role,
                   report_sha256=ballot.report_sha256, closes_at=ballot.closes_at,
                   needed=ballot.needed, attached=bool(attachments),
                   vote_url=vote_link(session, config, ballot, member) or ""))


def signoff_request_key(case: Case, ballot: Ballot, email: str) -> str:
    """Return the outbox key (so the Message-ID) of the sign-off request to one member."""
    return f"{case.reference}:ballot:{ballot.id}:signoff_request:{email.lower()}"


def report_attachments(session: Session, case: Case, sha256: str) -> list[Attachment]:
    """Return the stored report version with that SHA-256 as an attachment, if on disk."""
    document = session.exec(select(Document).where(
        Document.case_id == case.id, Document.sha256 == sha256
    )).first()
    if document is None or not Path(document.path).is_file():
        return []
    return [Attachment(document.filename, Path(document.path).read_bytes())]
