"""The commands the cockpit added: undelivered messages, one-off agencies, votes by link."""

from __future__ import annotations

from sqlmodel import select

from bot.agencies.directory import agency_for_sender
from bot.ballots.links import PURPOSE
from bot.ballots.members import member_by_email
from bot.commands.agencies import AddOneOffAgency, add_one_off_agency
from bot.commands.base import CommandError, NotAllowed
from bot.commands.outbox import GiveUp, Resend, give_up, resend
from bot.commands.vote_links import VoteByLink, vote_by_link
from bot.kernel.signing import sign
from bot.store.db import transaction
from bot.store.models import AgencyRequest, OutboxMessage
from bot.store.statuses import OutboxStatus
from tests.commands.conftest import DECIDED, REFERENCE, STRANGER, World

POLICE = "chris.superintendent@police.example"


def _dead_letter(world: World) -> int:
    with transaction(world.engine.database) as session:
        row = session.exec(select(OutboxMessage)).first()
        assert row is not None
        row.status, row.last_error = OutboxStatus.DEAD, "550 no such user"
        session.add(row)
        return row.id or 0


def test_an_undelivered_message_is_sent_again_or_given_up_with_a_reason(world: World) -> None:
    # Given a message the outbox gave up on,
    number = _dead_letter(world)
    # when a reader asks to resend it, they are refused,
    assert isinstance(world.run(world.actor(STRANGER), resend, Resend(number)), NotAllowed)
    # a give-up with no reason is refused with one line,
    refused = world.run(world.manager, give_up, GiveUp(number, " "))
    assert isinstance(refused, CommandError) and "say why" in str(refused)
    # and the business manager's resend queues it again at once.
    sent_again = world.run(world.manager, resend, Resend(number))
    assert isinstance(sent_again, OutboxMessage)
    assert (sent_again.status, sent_again.attempts) == (OutboxStatus.PENDING, 0)
    assert [e.actor for e in world.audit("dead_letter_resent")] == ["slack:U0000000001"]


def test_a_one_off_agency_is_asked_and_its_replies_are_recognised(decided: World) -> None:
    # When the business manager asks an agency that is not in the config,
    state = decided.run(decided.manager, add_one_off_agency, AddOneOffAgency(
        REFERENCE, "Little Acorns Nursery", "dsl@acorns.example", "boss@acorns.example"))
    # then it is asked on the case's deadline rules, and mail from its people is its own.
    assert not isinstance(state, CommandError)
    assert state.agency_key == "little_acorns_nursery"
    with transaction(decided.engine.database) as session:
        asked = session.exec(select(AgencyRequest).where(
            AgencyRequest.agency_key == "little_acorns_nursery")).one()
        assert asked.due_at is not None
        found = agency_for_sender(session, decided.config, "DSL@acorns.example")
    assert found is not None and found.name == "Little Acorns Nursery"
    # A bad address is one line, and nothing is stored.
    bad = decided.run(decided.manager, add_one_off_agency, AddOneOffAgency(
        REFERENCE, "Other", "not-an-address"))
    assert isinstance(bad, CommandError) and "contact email" in str(bad)


def test_a_vote_link_counts_once_and_a_forged_one_not_at_all(world: World) -> None:
    # Given the police lead's link to the open decision ballot,
    ballot = world.ballot("decision")
    with transaction(world.engine.database) as session:
        token = sign(session, PURPOSE, {"m": POLICE, "b": ballot.id, "h": ""}, ballot.closes_at)
    member = member_by_email(world.config, POLICE)
    assert member is not None
    # when it is used, the vote counts for the police, from the web;
    cast = world.run(world.operator, vote_by_link,
                     VoteByLink(token, "rapid_review", "Serious harm is suspected."))
    assert not isinstance(cast, CommandError) and cast.partner_key == "police"
    # used again, it is refused; forged, it is refused.
    again = world.run(world.operator, vote_by_link, VoteByLink(token, "rapid_review", "x"))
    assert isinstance(again, CommandError) and "has been used" in str(again)
    forged = world.run(world.operator, vote_by_link,
                       VoteByLink(token[:-2] + "xx", "rapid_review", "x"), DECIDED)
    assert isinstance(forged, CommandError) and "not sent by the partnership" in str(forged)
