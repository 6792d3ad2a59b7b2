"""An SMTP relay with an account of its own, configured in [mailbox.smtp], on the real servers."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.mail.imap_smtp import ImapSmtpMailbox
from bot.adapters.mail.mail_server import Login
from bot.config import Config, missing_secrets
from bot.kernel.mailbox import MailboxAuthError, MailboxError, MemoryCursorStore
from bot.service.wiring import open_mailbox
from tests.adapters.mail.harness import make_message
from tests.factories import build_config, exactly
from tests.servers.dovecot import make_certificate
from tests.servers.fixtures import MailServers

# The environment variables the test configurations name, and the passwords they hold.
IMAP_ENV = "RRBOT_TEST_IMAP_PASSWORD"
SMTP_ENV = "RRBOT_TEST_RELAY_PASSWORD"
TOKEN_ENV = "RRBOT_TEST_RELAY_TOKEN"
IMAP_PASSWORD = "imap-secret"
RELAY_PASSWORD = "relay-secret"

# A recipient outside the test servers' domains: only a logged-in client may send to it.
OUTSIDE = "nurse@health.test"


@pytest.fixture
def logins(mail_servers: MailServers, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Record each SMTP login the test SMTP server checks: the account and whether it passed."""
    store = mail_servers.dovecot.store
    checked: list[tuple[str, bool]] = []
    check_password = store.check_password

    def recording(address: str, password: str) -> bool:
        accepted = check_password(address, password)
        checked.append((address, accepted))
        return accepted

    # The SMTP server asks the store about each AUTH; Dovecot reads its own passwd-files.
    monkeypatch.setattr(store, "check_password", recording)
    return checked


@pytest.fixture
def accounts(mail_servers: MailServers) -> tuple[str, str]:
    """Create the partnership mailbox (IMAP) and the relay's own, different, SMTP account."""
    imap_user = mail_servers.new_user("bot", password=IMAP_PASSWORD)
    relay_user = mail_servers.new_user("relay", password=RELAY_PASSWORD)
    return imap_user, relay_user


def imap_config(servers: MailServers, address: str, smtp: dict[str, Any]) -> Config:
    """Return the example configuration reading address over IMAP and sending as smtp says."""
    return build_config(label="cfg.toml", mailbox={
        "backend": "imap", "address": address,
        "imap": exactly({
            "host": servers.host, "port": servers.imaps_port, "security": "ssl",
            "username": address, "password_env": IMAP_ENV, "ca_file": str(servers.ca_file),
            "use_idle": False,
        }),
        "smtp": exactly({
            "host": servers.host, "port": servers.smtp_port, "security": "starttls", **smtp
        }),
    })


@pytest.fixture
def opened() -> Iterator[list[ImapSmtpMailbox]]:
    """Close every mailbox a test opens."""
    mailboxes: list[ImapSmtpMailbox] = []
    yield mailboxes
    for mailbox in mailboxes:
        mailbox.close()


def open_imap(
    opened: list[ImapSmtpMailbox], config: Config, environ: dict[str, str]
) -> ImapSmtpMailbox:
    """Build the mailbox from the configuration, as `rrbot run` does, and close it afterwards."""
    mailbox = open_mailbox(config, MemoryCursorStore(), environ)
    assert isinstance(mailbox, ImapSmtpMailbox)
    opened.append(mailbox)
    return mailbox


def outgoing(sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = OUTSIDE
    message["Subject"] = "Rapid Review invitation"
    message["Message-ID"] = make_msgid(domain="partnership.test")
    message.set_content("Please attend.\n")
    return message


def message_id_of(raw: bytes) -> str:
    return str(BytesParser(policy=default).parsebytes(raw, headersonly=True)["Message-ID"]).strip()


def test_smtp_with_its_own_account_sends_with_that_accounts_password(
    mail_servers: MailServers,
    accounts: tuple[str, str],
    logins: list[tuple[str, bool]],
    opened: list[ImapSmtpMailbox],
) -> None:
    # Given a mailbox read over IMAP as one account and sent through a relay as another,
    imap_user, relay_user = accounts
    config = imap_config(
        mail_servers, imap_user, {"username": relay_user, "password_env": SMTP_ENV,
                                  "ca_file": str(mail_servers.ca_file)},
    )
    environ = {IMAP_ENV: IMAP_PASSWORD, SMTP_ENV: RELAY_PASSWORD}
    assert missing_secrets(config.settings, environ) == []
    mailbox = open_imap(opened, config, environ)
    message = outgoing(imap_user)

    # when it sends,
    mailbox.send(message)

    # then the relay's account logged in with its own password and nobody else logged in,
    assert logins == [(relay_user, True)]
    # the message went out through the relay, and its copy is in the IMAP account's Sent.
    message_id = str(message["Message-ID"])
    assert any(
        mail.recipient == OUTSIDE and message_id_of(mail.raw) == message_id
        for mail in mail_servers.relayed()
    )
    assert mail_servers.message_ids(imap_user, "Sent") == [message_id]


def test_wrong_smtp_password_is_a_one_line_auth_error_naming_the_smtp_server(
    mail_servers: MailServers,
    accounts: tuple[str, str],
    logins: list[tuple[str, bool]],
    opened: list[ImapSmtpMailbox],
) -> None:
    # Given a relay account whose password variable holds the wrong password,
    imap_user, relay_user = accounts
    config = imap_config(mail_servers, imap_user, {"username": relay_user,
                                                   "password_env": SMTP_ENV})
    environ = {IMAP_ENV: IMAP_PASSWORD, SMTP_ENV: "not-the-password"}
    mailbox = open_imap(opened, config, environ)
    message = outgoing(imap_user)

    # when the bot sends, the relay refuses it in one line naming the SMTP server and account,
    with pytest.raises(MailboxAuthError) as caught:
        mailbox.send(message)
    text = str(caught.value)
    assert "\n" not in text
    assert text == (
        f"SMTP login to {mail_servers.host}:{mail_servers.smtp_port} as {relay_user}"
        f" was refused: 5.7.8 Authentication credentials invalid"
    )
    # smtplib tries each mechanism the server offers, so the relay account may be tried twice.
    assert logins and set(logins) == {(relay_user, False)}
    assert all(
        message_id_of(mail.raw) != str(message["Message-ID"]) for mail in mail_servers.relayed()
    )

    # while IMAP, with its own password, still reads the mailbox.
    raw = make_message("Still arriving", "duty.manager@council.test", imap_user)
    mail_servers.deliver(imap_user, raw)
    assert [message_id_of(mail.raw) for mail in mailbox.fetch_new()] == [message_id_of(raw)]


def test_smtp_without_an_account_of_its_own_sends_as_the_imap_account(
    mail_servers: MailServers,
    accounts: tuple[str, str],
    logins: list[tuple[str, bool]],
    opened: list[ImapSmtpMailbox],
) -> None:
    # Given an SMTP section that names only the server, and only the IMAP secret set,
    imap_user, _ = accounts
    config = imap_config(mail_servers, imap_user, {})
    environ = {IMAP_ENV: IMAP_PASSWORD}
    assert missing_secrets(config.settings, environ) == []
    mailbox = open_imap(opened, config, environ)

    # when the bot sends, it logs in to SMTP as the IMAP account, trusting IMAP's CA file.
    mailbox.send(outgoing(imap_user))

    assert logins == [(imap_user, True)]


def test_smtp_ca_file_of_its_own_is_the_one_trusted_for_smtp(
    mail_servers: MailServers,
    accounts: tuple[str, str],
    tmp_path: Path,
    opened: list[ImapSmtpMailbox],
) -> None:
    # Given an SMTP section trusting a CA that did not sign the test server's certificate,
    imap_user, _ = accounts
    other_ca = make_certificate(tmp_path)
    config = imap_config(mail_servers, imap_user, {"ca_file": str(other_ca)})
    mailbox = open_imap(opened, config, {IMAP_ENV: IMAP_PASSWORD})

    # when the bot sends, the SMTP certificate is refused, naming that CA file,
    with pytest.raises(MailboxError) as caught:
        mailbox.send(outgoing(imap_user))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(
        f"the certificate of SMTP server {mail_servers.host}:{mail_servers.smtp_port} could not"
        f" be verified"
    )
    assert f"check that ca_file {other_ca} is the CA that signed it" in text

    # while IMAP, trusting its own CA file, still reads the mailbox.
    assert list(mailbox.fetch_new()) == []


def test_smtp_xoauth2_signs_in_as_the_smtp_account_with_its_own_token(
    mail_servers: MailServers, opened: list[ImapSmtpMailbox]
) -> None:
    # Given IMAP on a password and SMTP on an XOAUTH2 token for another account,
    config = imap_config(
        mail_servers, "bot@example.org",
        {"username": "relay@example.org", "oauth2_token_env": TOKEN_ENV},
    )
    mailbox = open_imap(opened, config, {IMAP_ENV: "x", TOKEN_ENV: "relay-token"})
    # then the SMTP initial response names the relay account and carries its token,
    assert mailbox.smtp.login.xoauth2() == (
        "user=relay@example.org\x01auth=Bearer relay-token\x01\x01"
    )
    # as it does when the token is a function giving the current one.
    login = Login("relay@example.org", oauth2_token=lambda: "relay-token")
    assert login.xoauth2() == "user=relay@example.org\x01auth=Bearer relay-token\x01\x01"


def test_smtp_password_and_token_together_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one of password and oauth2_token"):
        Login("relay@example.org", password="y", oauth2_token="z")
