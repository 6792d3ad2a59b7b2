"""The partners' decision by email: a verified member's reply to the referral copy is a vote."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import select

from bot.engine.step import Engine
from bot.store.db import transaction
from bot.store.models import Ballot, Case, OutboxMessage, Vote
from tests.corpus.make_corpus import trace
from tests.handlers.world import deliver, make_engine, world_config

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
POLICE_LEAD = "chris.superintendent@police.example"
HEALTH_LEAD = "pat.nurse@icb.example"
LA_LEAD = "alex.director@exampleshire.example"


def body_of(row: OutboxMessage) -> str:
    message = message_from_bytes(row.payload, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def reply(sender: str, in_reply_to: str, text: str, number: int) -> bytes:
    """Write a member's reply to the referral copy as their boundary passes it on, quoting it."""
    domain = sender.split("@")[1]
    return (trace(domain) + f"From: {sender}\r\nTo: rapidreview@exampleshire.example\r\n"
            f"Subject: RE: [RR-2026-001] New referral\r\nMessage-ID: <vote{number}@{domain}>\r\n"
            f"In-Reply-To: {in_reply_to}\r\nDate: Thu, 05 Mar 2026 11:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n\r\nOn Thu, the Rapid Review bot wrote:\r\n> Rapid Review\r\n"
            "> No further action\r\n").encode()


def test_partners_give_the_decision_by_replying_to_the_referral_copy(tmp_path: Path) -> None:
    # Given a referral whose copy went to every partner member,
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    deliver(engine, mailbox, (CORPUS / "referral_docx_gp.eml").read_bytes(), "referral")
    with transaction(engine.database) as session:
        copy = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "referral_copy")).one()
        copy_id, copy_text = copy.message_id, body_of(copy)
    # which says how to vote by reply, in the ballot's words,
    assert "To vote on the decision, reply to this email" in copy_text
    assert all(choice in copy_text for choice in (
        "Rapid Review", "No further action", "Local learning review", "More information needed"))
    # when the police lead replies with a choice and a rationale,
    voted = deliver(engine, mailbox, reply(
        POLICE_LEAD, copy_id, "Rapid Review\r\nSerious injury; neglect suspected.", 1), "1")
    # then it counts as the police's decision vote, with the rationale, from the email;
    assert (voted.status, voted.kind) == ("processed", "vote_email"), voted.reason
    assert votes(engine) == {"police": ("rapid_review", "Serious injury; neglect suspected.",
                                        "email")}
    # when the health lead's reply names no choice,
    unclear = deliver(engine, mailbox, reply(HEALTH_LEAD, copy_id, "Can we talk first?", 2),
                      "2")
    # then it is quarantined with the reason, and the lead is told how to write a vote;
    assert (unclear.status, unclear.kind) == ("quarantined", "vote_email")
    assert "names none of \"Rapid Review\"" in (unclear.reason or "")
    with transaction(engine.database) as session:
        told = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "vote_unclear")).one()
        told_text, told_to = body_of(told), told.recipients
        told_reply = message_from_bytes(told.payload, policy=policy.default)["In-Reply-To"]
    assert (told_to, told_reply) == (HEALTH_LEAD, "<vote2@icb.example>")
    assert "Local learning review" in told_text and "on the first line" in told_text
    # when the police lead changes its mind, its vote is replaced, and said to be;
    changed = deliver(engine, mailbox, reply(
        POLICE_LEAD, copy_id, "no further action: the injury was accidental.", 3), "3")
    assert changed.reason == "police no_further_action (replacing its earlier vote)"
    # and the local authority's agreeing reply decides the case.
    deliver(engine, mailbox, reply(LA_LEAD, copy_id, "No further action - agreed.", 4), "4")
    with transaction(engine.database) as session:
        case = session.exec(select(Case)).one()
        ballot = session.exec(select(Ballot)).one()
    assert (ballot.outcome, case.decision) == ("no_further_action", "no_further_action")
    assert votes(engine)["local_authority"] == ("no_further_action", "agreed.", "email")


def votes(engine: Engine) -> dict[str, tuple[str, str | None, str]]:
    with transaction(engine.database) as session:
        return {vote.partner_key: (vote.choice, vote.rationale, vote.source)
                for vote in session.exec(select(Vote))}

