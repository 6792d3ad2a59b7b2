"""Agency request commands: the business manager changes requests; anyone else is refused."""

from __future__ import annotations

import json

from bot.commands.agencies import (
    AddAgency,
    AgencyRequestState,
    ExtendDeadline,
    RecordReturn,
    WithdrawAgency,
    add_agency,
    extend_request,
    list_requests,
    record_return,
    withdraw_request,
)
from bot.commands.base import CommandError, NotAllowed
from bot.process.working_days import parse_instant
from tests.commands.conftest import HEALTH_LEAD, MANAGER, POLICE_LEAD, REFERENCE, STRANGER, World

NEW_DUE = parse_instant("2027-01-08T12:00")


def statuses(world: World) -> dict[str, str]:
    listed = world.run(world.operator, list_requests, REFERENCE)
    assert isinstance(listed, list)
    return {line.agency_key: line.status for line in listed}


def test_the_business_manager_extends_a_deadline_in_chat(decided: World) -> None:
    # When the business manager gives the GP until noon on Friday 8 January,
    result = decided.run(decided.manager, extend_request, ExtendDeadline(REFERENCE, "gp", NEW_DUE))
    # then the request is due then, audited as theirs.
    assert result == AgencyRequestState(REFERENCE, "gp", "open", NEW_DUE)
    (entry,) = decided.audit("agency_request_extended")
    assert entry.actor == "slack:U0000000001"


def test_a_partner_member_may_not_extend_and_the_refusal_is_audited(decided: World) -> None:
    # When the police lead tries to extend the GP's deadline,
    result = decided.run(decided.actor(POLICE_LEAD), extend_request,
                         ExtendDeadline(REFERENCE, "gp", NEW_DUE))
    # then they are refused in one line, the refusal is audited, and nothing changes.
    assert isinstance(result, NotAllowed)
    assert str(result) == ("Sorry, only the partnership's business manager can change agency"
                           " requests.")
    (entry,) = decided.audit("chat_command_refused")
    assert (entry.actor, json.loads(entry.detail)["command"]) == ("slack:U0000000020", "extend")
    assert decided.audit("agency_request_extended") == []


def test_an_extension_into_the_past_is_one_line(decided: World) -> None:
    result = decided.run(decided.operator, extend_request,
                         ExtendDeadline(REFERENCE, "gp", parse_instant("2026-12-20T12:00")))
    assert isinstance(result, CommandError) and not isinstance(result, NotAllowed)
    assert str(result) == "the new deadline must be in the future"


def test_an_agency_is_added_once_and_only_by_the_business_manager(decided: World) -> None:
    # When the operator adds housing, it is asked on the late-agency deadline;
    added = decided.run(decided.operator, add_agency, AddAgency(REFERENCE, "housing"))
    assert isinstance(added, AgencyRequestState) and added.status == "open"
    assert added.due_at is not None
    # adding it again is one line; and a reader may not add an agency at all.
    again = decided.run(decided.operator, add_agency, AddAgency(REFERENCE, "housing"))
    assert str(again) == f"housing was already asked on {REFERENCE}"
    refused = decided.run(decided.actor(STRANGER), add_agency, AddAgency(REFERENCE, "school"))
    assert isinstance(refused, NotAllowed)
    assert "school" not in statuses(decided)


def test_withdrawing_a_request(decided: World) -> None:
    # Given the hospital was asked, when the business manager withdraws it, it is withdrawn;
    withdrawn = decided.run(decided.manager, withdraw_request,
                            WithdrawAgency(REFERENCE, "hospital"))
    assert isinstance(withdrawn, AgencyRequestState) and withdrawn.status == "withdrawn"
    # a partner member may not; and an unknown case is one line.
    refused = decided.run(decided.actor(HEALTH_LEAD), withdraw_request,
                          WithdrawAgency(REFERENCE, "gp"))
    assert isinstance(refused, NotAllowed)
    missing = decided.run(decided.manager, withdraw_request,
                          WithdrawAgency("RR-2099-999", "gp"))
    assert str(missing) == "no case 'RR-2099-999'"
    assert statuses(decided) == {"gp": "open", "hospital": "withdrawn"}


def test_recording_a_return_received_another_way(decided: World) -> None:
    received = decided.run(decided.operator, record_return,
                           RecordReturn(REFERENCE, "gp", "secure portal upload, 10:05"))
    assert isinstance(received, AgencyRequestState) and received.status == "returned"
    # An outsider (another workspace) may not; a request never made is one line.
    outsider = decided.actor(MANAGER, in_workspace=False)
    assert isinstance(decided.run(outsider, record_return,
                                  RecordReturn(REFERENCE, "hospital", "x")), NotAllowed)
    never = decided.run(decided.operator, record_return, RecordReturn(REFERENCE, "school", "x"))
    assert str(never) == f"{REFERENCE} has no request to school"


def test_listing_requests_is_for_anyone_in_the_partnership(decided: World) -> None:
    assert statuses(decided) == {"gp": "open", "hospital": "open"}
    listed = decided.run(decided.actor(STRANGER), list_requests, REFERENCE)
    assert isinstance(listed, list) and len(listed) == 2
    outsider = decided.actor(STRANGER, in_workspace=False)
    assert isinstance(decided.run(outsider, list_requests, REFERENCE), NotAllowed)
    assert str(decided.run(decided.operator, list_requests, "RR-1")) == "no case 'RR-1'"

