"""An email vote through Exchange Online: counted with its results, refused with forged ones."""

from __future__ import annotations

from dataclasses import replace
from email.parser import BytesParser

from sqlmodel import select

import handlers.vote_email as vote_email
from bot.ballots.lifecycle import open_signoff_ballot
from bot.config import Config
from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel.mailbox import EMAIL_POLICY
from bot.store.db import transaction
from bot.store.models import InboundMessage, OutboxMessage, Vote
from tests.adapters.chat.slack_harness import Harness
from tests.corpus.shapes import eop_results, exchange_online, sender_hop

SHA = "d" * 64
HEALTH = "pat.nurse@icb.example"


def exchange_online_config(config: Config) -> Config:
    mailbox = config.settings.mailbox.model_copy(update={"boundary": "exchange-online"})
    return replace(config, settings=config.settings.model_copy(update={"mailbox": mailbox}))


def reply(harness: Harness, config: Config, trace: str, number: int) -> Outcome:
    with transaction(harness.engine.database) as session:
        request = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "signoff_request", OutboxMessage.recipients == HEALTH)).one()
        raw = (trace + f"From: Pat Nurse <{HEALTH}>\r\nTo: rapidreview@exampleshire.example\r\n"
               f"Subject: RE: sign-off\r\nMessage-ID: <v{number}@icb.example>\r\n"
               f"In-Reply-To: {request.message_id}\r\n\r\nAPPROVE\r\nReads well.\r\n").encode()
        message = BytesParser(policy=EMAIL_POLICY).parsebytes(raw)
        row = InboundMessage(partnership="exampleshire", mailbox="m", server_id=f"v{number}",
                             message_id=f"<v{number}@icb.example>", received_at=harness.now,
                             raw=raw)
        session.add(row)
        session.flush()
        outcome = vote_email.process(InboundContext(session, harness.now, config), row, message)
        assert outcome is not None
        return outcome


def test_an_email_vote_in_exchange_onlines_shape_counts_and_a_forged_one_does_not(
    harness: Harness
) -> None:
    # Given a sign-off ballot and a partnership mailbox in Exchange Online,
    reference = harness.open_case()
    with transaction(harness.engine.database) as session:
        open_signoff_ballot(session, harness.engine.config,
                            session.merge(harness.case(reference)), SHA, harness.now)
    harness.step()
    config = exchange_online_config(harness.engine.config)
    # when the health lead's reply arrives with results written below Microsoft's frontend
    # (forged: Exchange Online itself said dmarc=fail),
    forged = exchange_online("icb.example", "fail", below=eop_results("icb.example")
                             + sender_hop("icb.example", "relay.evil.test"))
    refused = reply(harness, config, forged, 1)
    # then it is not counted;
    assert refused.status == "quarantined" and "vote not counted" in refused.reason
    # and when the real reply arrives with Exchange Online's own pass, it counts.
    counted = reply(harness, config, exchange_online("icb.example"), 2)
    assert counted.status == "processed", counted.reason
    with transaction(harness.engine.database) as session:
        vote = session.exec(select(Vote)).one()
    assert (vote.partner_key, vote.choice) == ("health", "approve")
