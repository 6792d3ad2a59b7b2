"""`rrbot check-mailbox` against the real Dovecot and SMTP servers: one clear line when wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from tests.factories import EMBEDDED_DATABASE, exactly, write_config


def imap_config(tmp_path: Path, servers: Any, address: str, ca_file: str | None) -> Path:
    """Write the example config (its embedded database) with the mailbox on the test Dovecot."""
    imap = {"host": servers.host, "port": servers.imaps_port, "security": "ssl",
            "username": address, "password_env": "TEST_IMAP_PASSWORD"}
    if ca_file:
        imap["ca_file"] = ca_file
    smtp = {"host": servers.host, "port": servers.smtp_port, "security": "starttls",
            "username": address, "password_env": "TEST_IMAP_PASSWORD"}
    return write_config(tmp_path, database_url=EMBEDDED_DATABASE, mailbox={
        "backend": "imap", "address": address, "imap": exactly(imap), "smtp": exactly(smtp)})


@pytest.mark.parametrize(
    ("password", "trusted", "expected"),
    [
        ("right", True, None),
        ("wrong", True, "mailbox (imap): IMAP login"),
        ("right", False, "mailbox (imap): "),
    ],
    ids=["ok", "wrong-password", "untrusted-certificate"],
)
def test_check_mailbox(
    tmp_path: Path, mail_servers: Any, password: str, trusted: bool, expected: str | None
) -> None:
    # Given a partnership mailbox on the test Dovecot,
    address = mail_servers.new_user("check", password="right")
    ca_file = str(mail_servers.ca_file) if trusted else None
    config = imap_config(tmp_path, mail_servers, address, ca_file)
    # when check-mailbox runs with this password and trust,
    result = CliRunner().invoke(app, ["check-mailbox", "--config", str(config)],
                                env={"TEST_IMAP_PASSWORD": password})
    # then it says OK with the folders, or gives exactly one line naming what is wrong.
    if expected is None:
        assert result.exit_code == 0, result.output
        assert "OK" in result.stdout and "INBOX" in result.stdout
        return
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected)
    if not trusted:
        assert "certificate" in lines[0]
