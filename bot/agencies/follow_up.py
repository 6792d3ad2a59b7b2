"""After the report has gone: stop chasing what did not come, ask for the preset's follow-ups."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.agencies.chasing import cancel_chasing
from bot.agencies.requests import ask_follow_up
from bot.config import Config
from bot.kernel import audit
from bot.mail.notify import notify
from bot.store.models import AgencyRequest, Case, Milestone
from bot.store.statuses import AgencyRequestKind, AgencyRequestStatus, MilestoneStatus

# What the business manager and the records call a request the submission overtook.
NOT_RETURNED_WORDS = "not returned before submission"


def stop_chasing_outstanding(
    session: Session, config: Config, case: Case, now: datetime, actor: str, why: str,
) -> list[AgencyRequest]:
    """Close every open request of a case as not returned, cancel its chasing, audit each."""
    outstanding = list(session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id, AgencyRequest.status == AgencyRequestStatus.OPEN,
    ).order_by(col(AgencyRequest.agency_key))))
    for request in outstanding:
        request.status, request.closed_at = AgencyRequestStatus.NOT_RETURNED, now
        session.add(request)
        cancel_chasing(session, case, request.agency_key, request.kind)
        audit.record(session, case.partnership, actor, "agency_request_closed", now, case.id,
                     agency=request.agency_key, status=AgencyRequestStatus.NOT_RETURNED,
                     request=request.kind, reason=why)
    return outstanding


def after_submission(session: Session, config: Config, case: Case, now: datetime) -> None:
    """Stop chasing the returns the report went without, tell the manager, ask for follow-ups."""
    outstanding = stop_chasing_outstanding(session, config, case, now, "bot", NOT_RETURNED_WORDS)
    if outstanding:
        names = {agency.key: agency.name for agency in config.settings.agencies}
        manager = config.settings.business_manager
        notify(session, config, "agencies_not_returned", to=[manager.email],
               key=f"{case.reference}:not_returned", now=now, case_id=case.id, values=dict(
                   recipient_name=manager.name, case_reference=case.reference,
                   agencies=[names.get(r.agency_key, r.agency_key) for r in outstanding]))
    ask_follow_ups(session, config, case, now)


def ask_follow_ups(session: Session, config: Config, case: Case, now: datetime) -> None:
    """Ask each agency that returned for every follow-up the preset marks `ask_agencies`."""
    returned = session.exec(select(AgencyRequest.agency_key).where(
        AgencyRequest.case_id == case.id, AgencyRequest.kind == AgencyRequestKind.INFORMATION,
        AgencyRequest.status == AgencyRequestStatus.RETURNED,
    ).order_by(col(AgencyRequest.agency_key))).all()
    calendar = config.calendar
    # At least one working day to answer, as for any request.
    floor = calendar.at(calendar.add_working_days(calendar.local_date(now), 1))
    for definition in config.preset.milestones:
        if not definition.ask_agencies:
            continue
        milestone = session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.key == definition.key)).first()
        if milestone is None or milestone.status not in {MilestoneStatus.PENDING,
                                                         MilestoneStatus.OVERDUE}:
            continue
        asked = set(session.exec(select(AgencyRequest.agency_key).where(
            AgencyRequest.case_id == case.id, AgencyRequest.kind == definition.key)).all())
        for agency_key in returned:
            if agency_key not in asked:
                ask_follow_up(session, config, case, agency_key, definition.key,
                              max(milestone.due_at, floor), now, "bot")
