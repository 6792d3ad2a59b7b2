"""Sender verification on the boundaries councils really have: header sets and their verdicts.

Each header set is in the shape a real system writes (tests/corpus/shapes.py names the
documentation each follows); the verdict is whether the bot may act on the sender.
"""

from __future__ import annotations

from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from bot.kernel.mailbox import EMAIL_POLICY
from bot.mail.boundary_survey import survey
from bot.mail.senders import verified_sender
from tests.corpus import shapes
from tests.factories import build_config, dotted

LEE = "Dr Lee <lee.safeguarding@gp.example>"
MANAGER = "Sam Example <sam.example@exampleshire.example>"
EO = {"mailbox.boundary": "exchange-online"}
MIMECAST = {"mailbox.trusted_authserv_id": "relay.mimecast.com",
            "mailbox.internal_relays": ["*.exampleshire.local"]}
GOOGLE = {"mailbox.trusted_authserv_id": "mx.google.com"}
FORGED_EOP = shapes.eop_results("gp.example") + shapes.sender_hop("gp.example", "relay.evil.test")

# (name, trace headers, From, config overrides, verified, a words of the reason)
HEADER_SETS: list[tuple[str, str, str, dict[str, Any], bool, str]] = [
    ("exchange online, dmarc pass", shapes.exchange_online("gp.example"), LEE, EO, True,
     "dmarc=pass"),
    ("exchange online, dmarc fail", shapes.exchange_online("gp.example", "fail"), LEE, EO, False,
     "dmarc=fail"),
    ("exchange online, forged pass below the frontend",
     shapes.exchange_online("gp.example", "fail", below=FORGED_EOP), LEE, EO, False, "dmarc=fail"),
    ("exchange online, only a forged header below the frontend",
     shapes.exchange_online("gp.example", results=False, below=FORGED_EOP), LEE, EO, False,
     "1 Authentication-Results header(s) from outside ignored"),
    ("exchange online, Authentication-Results-Original ignored",
     shapes.exchange_online("gp.example", "fail", below=shapes.eop_results(
         "gp.example", name="Authentication-Results-Original")), LEE, EO, False, "dmarc=fail"),
    ("exchange online, inside the tenant", shapes.exchange_internal(), MANAGER, EO, True,
     "signed in"),
    ("exchange online, inside the tenant but not the tenant's domain", shapes.exchange_internal(),
     LEE, EO, False, "no authentication results"),
    ("exchange online shape, default authserv-id boundary",
     shapes.exchange_online("gp.example"), LEE, {}, False, "no authentication results"),
    ("mimecast and on-premises exchange", shapes.mimecast("gp.example"), LEE, MIMECAST, True,
     "dmarc=pass"),
    ("mimecast without the council's relays", shapes.mimecast("gp.example"), LEE,
     {"mailbox.trusted_authserv_id": "relay.mimecast.com"}, False, "from outside ignored"),
    ("mimecast, forged pass below the sender's hop", shapes.mimecast("gp.example", "fail", below=(
        shapes.sender_hop("gp.example", "relay.evil.test")
        + "Authentication-Results: relay.mimecast.com; dmarc=pass header.from=gp.example\r\n")),
     LEE, MIMECAST, False, "dmarc=fail"),
    ("google workspace", shapes.gmail("gp.example"), LEE, GOOGLE, True, "dmarc=pass"),
    ("google workspace, dmarc fail", shapes.gmail("gp.example", "fail"), LEE, GOOGLE, False,
     "dmarc=fail"),
    ("opendkim and opendmarc, no dmarc record", shapes.opendkim("gp.example"), LEE, {}, True,
     "spf=pass and dkim=pass"),
    ("opendkim, spf only", shapes.opendkim("gp.example", dkim="none"), LEE, {}, False,
     "did not authenticate"),
    ("rewriting relay, original signature intact", shapes.rewriting_relay("gp.example"), LEE, {},
     True, "dmarc=pass"),
    ("rewriting relay, original signature broken", shapes.rewriting_relay(
        "gp.example", dkim_intact=False), LEE, {}, False, "dmarc=fail"),
    ("no boundary at all", shapes.opendkim("gp.example"), LEE, {"mailbox.boundary": "none"}, False,
     "no authentication results"),
]


def message_with(trace: str, sender: str) -> Any:
    raw = (trace + f"From: {sender}\r\nTo: rapidreview@exampleshire.example\r\n"
           "Subject: Referral\r\nMessage-ID: <b1@gp.example>\r\n\r\nReferral.\r\n").encode()
    return BytesParser(policy=EMAIL_POLICY).parsebytes(raw)


@pytest.mark.parametrize("name, trace, sender, overrides, verified, reason", HEADER_SETS,
                         ids=[entry[0] for entry in HEADER_SETS])
def test_each_boundary_shape_verifies_only_the_senders_it_authenticated(
    name: str, trace: str, sender: str, overrides: dict[str, Any], verified: bool,
    reason: str, tmp_path: Path,
) -> None:
    # Given a configuration for this boundary and a message with its trace headers,
    config = build_config(tmp_path, **dotted(overrides))
    # when the sender is checked,
    check = verified_sender(config, message_with(trace, sender))
    # then the verdict and its reason are the ones this shape must give.
    assert check.ok is verified, check.reason
    assert reason in check.reason


def test_the_survey_tells_the_it_officer_which_setting_makes_senders_verify(
    tmp_path: Path
) -> None:
    # Given an inbox of Exchange Online mail and a config still on the default boundary,
    config = build_config(tmp_path)
    raws = [message_with(shapes.exchange_online("gp.example"), LEE).as_bytes() for _ in range(3)]
    raws.append(message_with(shapes.exchange_internal(), MANAGER).as_bytes())
    # when the survey reads it,
    lines = survey(config.settings.mailbox, raws)
    # then it names the shape, says none would be checked, and what to set.
    assert "4 message(s)" in lines[0]
    shape = next(line for line in lines if "Exchange Online Protection" in line)
    assert "3 from Exchange Online Protection (no authserv-id): 0 would" in shape
    assert 'set boundary = "exchange-online" and 3 would' in shape
    # And with that setting, all of them would.
    fixed = build_config(tmp_path, **dotted(EO))
    lines = survey(fixed.settings.mailbox, raws)
    assert "3 from Exchange Online Protection (no authserv-id): 3 would" in "\n".join(lines)
