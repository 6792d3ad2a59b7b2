"""`rrbot check-mailbox` reads the newest mail and says whether its senders would verify."""

from __future__ import annotations

import mailbox
from pathlib import Path

from typer.testing import CliRunner

from bot.cli.main import app
from tests.corpus.shapes import exchange_online
from tests.factories import write_config


def test_check_mailbox_says_which_boundary_setting_makes_senders_verify(tmp_path: Path) -> None:
    # Given a Maildir inbox holding mail that came through Exchange Online Protection,
    (tmp_path / "var" / "mail").mkdir(parents=True)
    inbox = mailbox.Maildir(str(tmp_path / "var" / "mail" / "inbox"), create=True)
    for number in range(3):
        inbox.add((exchange_online("gp.example") + "From: Dr Lee <lee.safeguarding@gp.example>"
                   f"\r\nSubject: Referral\r\nMessage-ID: <c{number}@gp.example>\r\n\r\nHi.\r\n"
                   ).encode())
    config = write_config(tmp_path)
    # when the IT officer checks the mailbox with the default boundary,
    result = CliRunner().invoke(app, ["check-mailbox", "--config", str(config)])
    # then the check passes, and says none would verify and what to set;
    assert result.exit_code == 0, result.output
    assert "3 from Exchange Online Protection (no authserv-id): 0 would" in result.output
    assert 'set boundary = "exchange-online" and 3 would' in result.output
    # and the inbox is left as it was.
    assert len(inbox.keys()) == 3
