"""Agency information requests: extend a deadline, add or withdraw an agency, record a return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.agencies import directory
from bot.agencies import requests as agency_requests
from bot.commands.base import MANAGERS, READERS, Context, case_named, domain_errors, require
from bot.store.models import AgencyRequest, Case
from bot.store.statuses import AgencyRequestStatus

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
class AddOneOffAgency:
    """Ask an agency that is not in the configuration, by its name and people's addresses."""

    case_reference: str
    name: str
    contact_email: str
    escalation_email: str | None = None


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


def add_one_off_agency(context: Context, request: AddOneOffAgency) -> AgencyRequestState:
    """Store an agency outside the configuration and ask it, as add_agency would."""
    require(context, MANAGERS, "add-agency", MANAGER_ONLY)
    case_named(context, request.case_reference)
    with domain_errors():
        agency = directory.add_one_off_agency(
            context.session, context.config, request.name, request.contact_email,
            request.escalation_email, context.now, context.actor.who)
    return add_agency(context, AddAgency(request.case_reference, agency.key))


def agencies_to_add(context: Context, case_reference: str) -> list[tuple[str, str]]:
    """List the configured agencies not yet asked on a case (key and name), to choose from."""
    require(context, READERS, "list", "Sorry, you cannot see this partnership's cases.")
    case = case_named(context, case_reference)
    asked = {row.agency_key: row.status for row in context.session.exec(
        select(AgencyRequest).where(AgencyRequest.case_id == case.id))}
    return [(agency.key, agency.name) for agency in context.config.settings.agencies
            if asked.get(agency.key, "withdrawn") == "withdrawn"]


def open_request_choices(context: Context, case_reference: str) -> list[tuple[str, str]]:
    """List a case's open agency requests (key and name), to choose one to change."""
    require(context, READERS, "list", "Sorry, you cannot see this partnership's cases.")
    case = case_named(context, case_reference)
    names = directory.agency_names(context.session, context.config)
    return [(row.agency_key, names.get(row.agency_key, row.agency_key))
            for row in context.session.exec(select(AgencyRequest).where(
                AgencyRequest.case_id == case.id,
                AgencyRequest.status == AgencyRequestStatus.OPEN).order_by(col(AgencyRequest.id)))]


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
