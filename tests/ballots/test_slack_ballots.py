"""Decision and sign-off ballots in Slack: Block Kit, modals, quorum by organisation, chasing."""

from __future__ import annotations

import json

from sqlmodel import select

from bot.ballots.lifecycle import open_signoff_ballot
from bot.store.db import transaction
from bot.store.models import AuditEntry, Ballot, Milestone, OutboxMessage, Vote
from tests.adapters.chat.slack_harness import (
    HEALTH_LEAD,
    LA_DEPUTY,
    LA_LEAD,
    POLICE_DEPUTY,
    POLICE_LEAD,
    Harness,
    block_list,
    blocks_text,
)

SHA_1 = "a" * 64
SHA_2 = "b" * 64


def votes(harness: Harness, ballot_id: int) -> dict[str, tuple[str, str | None]]:
    with transaction(harness.engine.database) as session:
        return {vote.partner_key: (vote.choice, vote.member_role) for vote in session.exec(
            select(Vote).where(Vote.ballot_id == ballot_id))}


def audit_actions(harness: Harness, action: str) -> list[AuditEntry]:
    with transaction(harness.engine.database) as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)))


def test_a_new_case_posts_a_decision_ballot_with_a_button_per_choice(harness: Harness) -> None:
    # Given a referral opened on Friday 18 December 2026,
    reference = harness.open_case()
    # then the decision ballot is posted to the private channel as Block Kit with four buttons,
    posted = harness.slack.state.named("chat.postMessage")
    assert len(posted) == 1
    blocks = block_list(posted[0].arguments)
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [button["text"]["text"] for button in buttons] == [
        "Rapid Review", "No further action", "Local learning review", "More information needed"]
    assert f"{reference}: partner decision" in blocks_text(posted[0].arguments)
    assert "closes 17:00 Mon 21 Dec" in blocks_text(posted[0].arguments)
    # and the case waits for the decision, with the message's ts kept for later updates.
    assert harness.case(reference).status == "awaiting_decision"
    assert harness.ballot(reference).chat_ts is not None


def test_choosing_opens_a_modal_and_the_message_shows_progress(harness: Harness) -> None:
    # Given an open decision ballot,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    # when the police deputy clicks "Rapid Review",
    response = harness.click(POLICE_DEPUTY, ballot.id, "rapid_review")
    # then a modal asks for the rationale (required for anything but approve),
    assert response.status == 200
    modal = harness.slack.state.named("views.open")[-1].arguments["view"]
    modal = json.loads(modal) if isinstance(modal, str) else modal
    assert modal["callback_id"] == "ballot_rationale"
    assert modal["blocks"][1]["optional"] is False
    # and submitting without one is refused inside the modal, counting nothing.
    refused = harness.submit(POLICE_DEPUTY, ballot.id, "rapid_review", "  ")
    assert json.loads(refused.body)["response_action"] == "errors"
    assert votes(harness, ballot.id) == {}
    # When the deputy submits a rationale,
    harness.submit(POLICE_DEPUTY, ballot.id, "rapid_review", "Serious harm; agencies involved.")
    # then the message is updated in place with the partners' progress.
    update = harness.slack.state.named("chat.update")[-1].arguments
    assert update["ts"] == harness.ballot(reference).chat_ts
    assert ("1 of 3 partners: Police (deputy) chose Rapid Review; waiting for Local Authority,"
            " Health; 2 needed; closes 17:00 Mon 21 Dec") in blocks_text(update)


def test_two_of_three_decides_and_the_case_moves_on(harness: Harness) -> None:
    # Given an open decision ballot needing 2 of 3 partners,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    # when the police lead and the health lead choose Rapid Review,
    harness.vote(POLICE_LEAD, ballot.id, "rapid_review", "Meets the criteria.")
    assert harness.ballot(reference).status == "open"
    harness.vote(HEALTH_LEAD, ballot.id, "rapid_review", "Agree.")
    # then the ballot closes, the case is decided and its milestone done,
    closed = harness.ballot(reference)
    assert (closed.status, closed.outcome) == ("closed", "rapid_review")
    case = harness.case(reference)
    assert case.decision == "rapid_review"
    assert "Police: Meets the criteria." in (case.decision_rationale or "")
    with transaction(harness.engine.database) as session:
        milestone = session.exec(select(Milestone).where(
            Milestone.key == "partner_decision")).one()
    assert milestone.status == "done"
    # and the final message has no buttons and shows the outcome.
    final = blocks_text(harness.slack.state.named("chat.update")[-1].arguments)
    assert "Outcome: Rapid Review" in final and "vote:" not in final
    # A later vote changes nothing and is audited as too late.
    harness.submit(LA_LEAD, ballot.id, "no_further_action", "Late.")
    assert "local_authority" not in votes(harness, ballot.id)


def test_lead_and_deputy_of_one_partner_count_once_and_a_later_vote_replaces(
    harness: Harness,
) -> None:
    # Given an open decision ballot,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    # when the local authority's lead and then its deputy vote differently,
    harness.vote(LA_LEAD, ballot.id, "no_further_action", "Single-agency matter.")
    harness.vote(LA_DEPUTY, ballot.id, "rapid_review", "On reflection, serious harm.")
    # then the local authority has one vote, the deputy's, and the ballot is still open.
    assert votes(harness, ballot.id) == {"local_authority": ("rapid_review", "deputy")}
    assert harness.ballot(reference).status == "open"
    # When the police lead changes their vote before the ballot closes,
    harness.vote(POLICE_LEAD, ballot.id, "learning_review", "Learning only.")
    harness.vote(POLICE_LEAD, ballot.id, "rapid_review", "Changed my mind.")
    # then the replacement decides the ballot.
    assert harness.ballot(reference).outcome == "rapid_review"
    assert len(audit_actions(harness, "vote_cast")) == 4


def test_a_duplicate_delivery_counts_once(harness: Harness) -> None:
    # Given an open ballot and a health vote submitted through a modal,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    harness.click(HEALTH_LEAD, ballot.id, "rapid_review", action_ts="1766000000.000001")
    harness.click(HEALTH_LEAD, ballot.id, "rapid_review", action_ts="1766000000.000001")
    harness.submit(HEALTH_LEAD, ballot.id, "rapid_review", "Yes.", view_id="V0000000042")
    harness.submit(HEALTH_LEAD, ballot.id, "no_further_action", "No.", view_id="V0000000043")
    # when Slack delivers the first submission again,
    harness.submit(HEALTH_LEAD, ballot.id, "rapid_review", "Yes.", view_id="V0000000042")
    # then it is not counted again (the later vote stands), and the click opened one modal.
    assert votes(harness, ballot.id) == {"health": ("no_further_action", "lead")}
    assert len(audit_actions(harness, "vote_cast")) == 2
    assert len(harness.slack.state.named("views.open")) == 1


def test_a_non_member_and_another_workspace_are_refused_politely(harness: Harness) -> None:
    # Given an open ballot,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    # when someone who is not a partner member clicks, and a member's id from another
    # workspace clicks and submits,
    harness.click("U0000000999", ballot.id, "rapid_review")
    harness.click(POLICE_LEAD, ballot.id, "rapid_review", team="T0OTHER0000")
    harness.submit(POLICE_LEAD, ballot.id, "rapid_review", "spoof", team="T0OTHER0000")
    # then each gets an ephemeral refusal, no modal opens, nothing is counted, all audited.
    ephemeral = harness.slack.state.named("chat.postEphemeral")
    assert {call.arguments["user"] for call in ephemeral} == {"U0000000999", POLICE_LEAD}
    assert all("Sorry" in call.arguments["text"] for call in ephemeral)
    assert harness.slack.state.named("views.open") == []
    assert votes(harness, ballot.id) == {}
    reasons = [json.loads(entry.detail)["reason"] for entry in audit_actions(
        harness, "vote_refused")]
    assert sorted(reasons) == ["another workspace", "another workspace", "not a partner member"]


def test_partners_are_reminded_and_the_manager_warned_then_told_at_the_deadline(
    harness: Harness,
) -> None:
    # Given an open ballot that closes at 17:00 on Monday 21 December with one vote,
    reference = harness.open_case()
    ballot = harness.ballot(reference)
    harness.vote(POLICE_LEAD, ballot.id, "rapid_review", "Yes.")
    # when the clock reaches 4 working hours before the deadline,
    harness.step("2026-12-21T13:00")
    # then each member of the partners that have not voted gets a direct message.
    opened = {call.arguments["users"] for call in harness.slack.state.named(
        "conversations.open")}
    assert opened == {LA_LEAD, LA_DEPUTY, HEALTH_LEAD}
    direct = [c for c in harness.slack.state.named("chat.postMessage")
              if str(c.arguments["channel"]).startswith("D")]
    assert all(reference in c.arguments["text"] for c in direct) and len(direct) == 3
    # At 2 working hours before, the business manager is warned that quorum is at risk,
    harness.step("2026-12-21T15:00")
    subjects = [record["subject"] for record in harness.mailbox.records()]
    assert any("Quorum at risk" in subject for subject in subjects)
    # and when the deadline passes without quorum the ballot closes and they are told.
    harness.step("2026-12-21T17:00")
    closed = harness.ballot(reference)
    assert (closed.status, closed.outcome) == ("closed", "no_quorum")
    subjects = [record["subject"] for record in harness.mailbox.records()]
    assert any(subject.startswith(f"[{reference}] No quorum") for subject in subjects)
    assert "Closed without quorum" in blocks_text(
        harness.slack.state.named("chat.update")[-1].arguments)
    assert harness.case(reference).status == "awaiting_decision"


def test_no_further_action_is_fed_back_to_the_referrer_with_the_rationale(
    harness: Harness,
) -> None:
    # Given an open decision ballot on a referral from a school,
    reference = harness.open_case(referrer="referrer@school.example")
    ballot = harness.ballot(reference)
    # when two partners choose no further action,
    harness.vote(LA_LEAD, ballot.id, "no_further_action", "Threshold not met.")
    harness.vote(HEALTH_LEAD, ballot.id, "no_further_action", "Agree with LA.")
    harness.step()
    # then the referrer is sent the decision with the rationale, and the case moves on.
    feedback = [r for r in harness.mailbox.records() if r["to"] == "referrer@school.example"
                and "decision" in r["subject"]]
    assert len(feedback) == 1 and "No further action" in feedback[0]["subject"]
    with transaction(harness.engine.database) as session:
        row = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "decision_feedback")).one()
    assert b"Threshold not met." in row.payload
    assert harness.case(reference).status == "no_further_action"


def test_three_of_three_signoff_is_bound_to_a_version_and_a_reject_closes_it(
    unanimous: Harness,
) -> None:
    # Given a case whose report version 1 goes out for sign-off needing all three partners,
    harness = unanimous
    reference = harness.open_case()
    with transaction(harness.engine.database) as session:
        case = harness.case(reference)
        first = open_signoff_ballot(session, harness.engine.config, session.merge(case), SHA_1,
                                    harness.now)
        first_id = first.id
    harness.step()
    # then the sign-off ballot is posted with Approve and Request changes, and each member is
    # emailed the request.
    posted = harness.slack.state.named("chat.postMessage")[-1].arguments
    assert '"Approve"' in blocks_text(posted) and "aaaaaaaaaaaa" in blocks_text(posted)
    requests = [r for r in harness.mailbox.records() if "Sign-off needed" in r["subject"]]
    assert len(requests) == 5
    # When version 2 replaces it, the first ballot closes and a new one opens.
    with transaction(harness.engine.database) as session:
        second = open_signoff_ballot(session, harness.engine.config,
                                     session.merge(harness.case(reference)), SHA_2, harness.now)
        second_id = second.id
    with transaction(harness.engine.database) as session:
        assert session.get_one(Ballot, first_id).outcome == "superseded"
    # When two partners approve and the police deputy requests changes,
    harness.vote(LA_LEAD, second_id, "approve")
    harness.vote(HEALTH_LEAD, second_id, "approve")
    assert votes(harness, second_id)["local_authority"] == ("approve", "lead")
    harness.vote(POLICE_DEPUTY, second_id, "request_changes", "Chronology incomplete.")
    harness.step()
    # then all three can no longer approve: the ballot closes and the manager is told.
    with transaction(harness.engine.database) as session:
        closed = session.get_one(Ballot, second_id)
    assert (closed.status, closed.outcome) == ("closed", "request_changes")
    assert any("Changes requested" in r["subject"] for r in harness.mailbox.records())


def test_two_of_three_signoff_publishes_the_approved_version(harness: Harness) -> None:
    # Given a sign-off ballot on version 1 of the report,
    reference = harness.open_case()
    with transaction(harness.engine.database) as session:
        ballot_id = open_signoff_ballot(session, harness.engine.config,
                                        session.merge(harness.case(reference)), SHA_1,
                                        harness.now).id
    harness.step()
    # when two partners approve (one by its deputy), and one asked for changes first,
    harness.vote(HEALTH_LEAD, ballot_id, "request_changes", "Typo in section 2.")
    harness.vote(POLICE_DEPUTY, ballot_id, "approve")
    assert harness.ballot(reference, "signoff").status == "open"
    harness.vote(LA_LEAD, ballot_id, "approve", "Good report.")
    # then it closes as approved, the sign-off milestone is done and the event carries the hash.
    closed = harness.ballot(reference, "signoff")
    assert (closed.outcome, closed.report_sha256) == ("approve", SHA_1)
    with transaction(harness.engine.database) as session:
        milestone = session.exec(select(Milestone).where(
            Milestone.key == "partner_signoff")).one()
    assert milestone.status == "done"
    progress = blocks_text(harness.slack.state.named("chat.update")[-1].arguments)
    assert "Police (deputy) approved" in progress and "Outcome: Approved" in progress
