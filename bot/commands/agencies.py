"""Agency information requests: extend a deadline, add or withdraw an agency, record a return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.agencies import requests as agency_requests
from bot.commands.base import MANAGERS, READERS, Context, case_named, domain_errors, require
from bot.store.models import AgencyRequest, Case

# What anyone but the business manager is told when they try to change a request.
MANAGER_ONLY = "Sorry, only the partnership's business manager can change agency requests."


@dataclass(frozen=True)
class ExtendDeadline:
    """Give an agency until due to send its return."""

    case_reference: str
    agency_key: str
    due: datetime


@dataclass(frozen=True)
class AddAgency:
    """Ask one more agency on a case."""

    case_reference: str
    agency_key: str


@dataclass(frozen=True)
class WithdrawAgency:
    """Stop asking an agency on a case."""

    case_reference: str
    agency_key: str


@dataclass(frozen=True)
class RecordReturn:
    """Record a return that came another way, with how it came."""

    case_reference: str
    agency_key: str
    evidence: str


@dataclass(frozen=True)
class AgencyRequestState:
    """Where one agency request stands after a change."""

    case_reference: str
    agency_key: str
    status: str
    due_at: datetime | None


@dataclass(frozen=True)
class AgencyRequestLine:
    """One agency request as a list shows it."""

    agency_key: str
    status: str
    due_at: datetime | None
    reply_kind: str | None
    contact_problem: str | None


def extend_request(context: Context, request: ExtendDeadline) -> AgencyRequestState:
    """Give an agency a new deadline; its reminders and escalation move with it."""
    return _change(context, "extend", request.case_reference, request.agency_key,
                   lambda case: agency_requests.extend_request(
                       context.session, context.config, case, request.agency_key, request.due,
                       context.now, context.actor.who))


def add_agency(context: Context, request: AddAgency) -> AgencyRequestState:
    """Ask one more agency, on the preset's deadline for an agency added late."""
    return _change(context, "add-agency", request.case_reference, request.agency_key,
                   lambda case: agency_requests.add_agency(
                       context.session, context.config, case, request.agency_key, context.now,
                       context.actor.who))


def withdraw_request(context: Context, request: WithdrawAgency) -> AgencyRequestState:
    """Stop asking an agency; nothing more is sent to it."""
    return _change(context, "withdraw", request.case_reference, request.agency_key,
                   lambda case: agency_requests.withdraw_request(
                       context.session, context.config, case, request.agency_key, context.now,
                       context.actor.who))


def record_return(context: Context, request: RecordReturn) -> AgencyRequestState:
    """Record a return that came another way (a secure portal, by hand); the chasing stops."""
    return _change(context, "received", request.case_reference, request.agency_key,
                   lambda case: agency_requests.mark_received(
                       context.session, context.config, case, request.agency_key, context.now,
                       context.actor.who, request.evidence))


def list_requests(context: Context, case_reference: str) -> list[AgencyRequestLine]:
    """List a case's agency requests in the order they were made."""
    require(context, READERS, "list", "Sorry, you cannot see this partnership's cases.")
    case = case_named(context, case_reference)
    rows = context.session.exec(select(AgencyRequest).where(AgencyRequest.case_id == case.id)
                                .order_by(col(AgencyRequest.id))).all()
    return [AgencyRequestLine(row.agency_key, row.status, row.due_at, row.reply_kind,
                              row.contact_problem) for row in rows]


def _change(context: Context, command: str, case_reference: str, agency_key: str,
            change: Callable[[Case], AgencyRequest]) -> AgencyRequestState:
    # Only the business manager changes requests; the domain's refusal is one line.
    require(context, MANAGERS, command, MANAGER_ONLY)
    case = case_named(context, case_reference)
    with domain_errors():
        changed = change(case)
    return AgencyRequestState(case.reference, agency_key, changed.status, changed.due_at)
