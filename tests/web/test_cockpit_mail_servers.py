"""Signing in to the cockpit by a link that arrives over real SMTP in a real Dovecot mailbox."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from tests.factories import exactly
from tests.web.conftest import eventually, start_cockpit

pytestmark = pytest.mark.slow
PASSWORD = "secret-cockpit"


def signin_link(mail_servers: Any, address: str) -> str | None:
    """Return the sign-in link in the newest message in a Dovecot inbox, if one has come."""
    for raw in reversed(mail_servers.messages(address)):
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        found = re.search(r"http://\S+/sign-in/link/\S+", body.get_content() if body else "")
        if found:
            return found.group(0)
    return None


def test_the_manager_signs_in_by_a_link_from_her_dovecot_mailbox(
        tmp_path: Path, browser: Any, mail_servers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the service on the partnership's IMAP/SMTP mailbox, and the business manager's own
    # mailbox on the same Dovecot server,
    bot = mail_servers.new_user("bot", password=PASSWORD)
    manager = mail_servers.new_user("sam")
    monkeypatch.setenv("RRBOT_TEST_COCKPIT_PASSWORD", PASSWORD)
    account = {"username": bot, "password_env": "RRBOT_TEST_COCKPIT_PASSWORD",
               "ca_file": str(mail_servers.ca_file)}
    cockpit = start_cockpit(tmp_path, browser, changes={
        "business_manager": {"name": "Sam Example", "email": manager},
        "mailbox": {
            "backend": "imap", "address": bot,
            "imap": exactly({"host": mail_servers.host, "port": mail_servers.imaps_port,
                             "security": "ssl", **account}),
            "smtp": exactly({"host": mail_servers.host, "port": mail_servers.smtp_port,
                             "security": "starttls", **account})}})
    try:
        # when she asks for a sign-in link,
        page = cockpit.page()
        page.goto(f"{cockpit.url}/sign-in")
        page.fill("#address", manager)
        page.click("main button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your email"
        # then the link arrives over SMTP in her Dovecot inbox, and signs her in once.
        link = eventually(lambda: signin_link(mail_servers, manager),
                          "the sign-in link in the Dovecot inbox", seconds=60)
        page.goto(link)
        page.click("main button[type=submit]")
        assert page.url.endswith("/cases")
        assert "RR-2026-001" in page.locator("main").inner_text()
    finally:
        cockpit.service.stop()
