"""`rrbot check-mailbox` against the real Dovecot and SMTP servers: one clear line when wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def imap_config(tmp_path: Path, servers: Any, address: str, ca_file: str | None) -> Path:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('backend = "maildir"', 'backend = "imap"')
    text = text.replace('address = "rapidreview@exampleshire.example"', f'address = "{address}"')
    imap = (f'[mailbox.imap]\nhost = "{servers.host}"\nport = {servers.imaps_port}\n'
            f'security = "ssl"\nusername = "{address}"\npassword_env = "TEST_IMAP_PASSWORD"\n')
    if ca_file:
        imap += f'ca_file = "{ca_file}"\n'
    smtp = (f'[mailbox.smtp]\nhost = "{servers.host}"\nport = {servers.smtp_port}\n'
            f'security = "starttls"\nusername = "{address}"\n'
            f'password_env = "TEST_IMAP_PASSWORD"\n')
    start, end = text.index("[mailbox.imap]"), text.index("[mailbox.graph]")
    config = tmp_path / "config.toml"
    config.write_text(text[:start] + imap + smtp + "\n" + text[end:], encoding="utf-8")
    return config


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
