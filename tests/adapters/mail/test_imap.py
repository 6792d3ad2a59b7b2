"""IMAP-specific behaviour of ImapSmtpMailbox against the real Dovecot and SMTP test servers."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import make_msgid

import imapclient
import pytest

from bot.adapters.mail.imap_smtp import ImapSmtpMailbox
from bot.adapters.mail.smtp import SmtpEndpoint
from bot.kernel.mailbox import MailboxAuthError, MailboxError, TransientMailboxError
from tests.adapters.mail.harness import make_message
from tests.adapters.mail.harness_imap import imap_endpoint, make_mailbox, smtp_endpoint
from tests.servers.fixtures import BOT_PASSWORD, MailServers

SENDER = "duty.manager@council.test"


@pytest.fixture
def address(mail_servers: MailServers) -> str:
    return mail_servers.new_user("bot")


@pytest.fixture
def mailbox(mail_servers: MailServers, address: str) -> Iterator[ImapSmtpMailbox]:
    adapter = make_mailbox(mail_servers, address)
    try:
        yield adapter
    finally:
        adapter.close()


def message_id_of(raw: bytes) -> str:
    return str(BytesParser(policy=default).parsebytes(raw, headersonly=True)["Message-ID"]).strip()


def fetched_ids(mailbox: ImapSmtpMailbox) -> set[str]:
    return {message_id_of(mail.raw) for mail in mailbox.fetch_new()}


def other_client(servers: MailServers, address: str) -> imapclient.IMAPClient:
    """Log in as the user with a second, independent IMAP client (a person's mail program)."""
    context = ssl.create_default_context(cafile=str(servers.ca_file))
    client = imapclient.IMAPClient(servers.host, port=servers.imaps_port, ssl_context=context)
    client.login(address, BOT_PASSWORD)
    return client


def test_new_mail_wakes_idle_and_is_fetched_within_two_seconds(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    assert fetched_ids(mailbox) == set()
    raw = make_message("Arrives during IDLE", SENDER, address)
    delivery = threading.Timer(0.3, mail_servers.deliver, args=(address, raw))  # real-time ok
    started = time.monotonic()
    delivery.start()
    try:
        woke = mailbox.wait_for_mail(10)
        ids = fetched_ids(mailbox)
    finally:
        delivery.join()

    assert woke is True
    assert message_id_of(raw) in ids
    assert time.monotonic() - started < 2.0


def test_wait_for_mail_times_out_and_leaves_idle_cleanly(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    fetched_ids(mailbox)
    started = time.monotonic()

    assert mailbox.wait_for_mail(0.5) is False  # real-time ok

    assert 0.4 < time.monotonic() - started < 2.0
    # The connection is usable straight after DONE: a delivery now is seen at once.
    raw = make_message("After IDLE", SENDER, address)
    mail_servers.deliver(address, raw)
    assert mailbox.wait_for_mail(5) is True
    assert message_id_of(raw) in fetched_ids(mailbox)


def test_wait_for_mail_returns_at_once_when_mail_came_since_the_last_fetch(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    fetched_ids(mailbox)
    mail_servers.deliver(address, make_message("Between fetch and wait", SENDER, address))
    started = time.monotonic()

    assert mailbox.wait_for_mail(10) is True
    assert time.monotonic() - started < 1.0


def test_polling_without_idle_sees_new_mail(mail_servers: MailServers, address: str) -> None:
    adapter = make_mailbox(mail_servers, address, use_idle=False, poll_seconds=0.1)
    try:
        fetched_ids(adapter)
        raw = make_message("Polled", SENDER, address)
        delivery = threading.Timer(0.2, mail_servers.deliver, args=(address, raw))  # real-time ok
        delivery.start()
        woke = adapter.wait_for_mail(5)
        delivery.join()
        assert woke is True
        assert message_id_of(raw) in fetched_ids(adapter)
    finally:
        adapter.close()


def test_mail_delivered_while_the_bot_was_down_is_fetched_on_start(
    mail_servers: MailServers, address: str
) -> None:
    first = make_mailbox(mail_servers, address)
    fetched_ids(first)
    first.close()
    raws = [make_message(f"While down {n}", SENDER, address) for n in range(3)]
    for raw in raws:
        mail_servers.deliver(address, raw)

    restarted = make_mailbox(mail_servers, address)
    try:
        assert fetched_ids(restarted) == {message_id_of(raw) for raw in raws}
    finally:
        restarted.close()


def test_message_marked_read_by_another_client_is_still_fetched_and_left_unread(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    read_one = make_message("Someone opened this", SENDER, address)
    unread = make_message("Nobody opened this", SENDER, address)
    mail_servers.deliver(address, read_one)
    mail_servers.deliver(address, unread)
    person = other_client(mail_servers, address)
    try:
        person.select_folder("INBOX")
        seen_uid = person.search(["HEADER", "Message-ID", message_id_of(read_one)])
        person.add_flags(seen_uid, [imapclient.SEEN])

        assert fetched_ids(mailbox) == {message_id_of(read_one), message_id_of(unread)}

        person.select_folder("INBOX")
        assert len(person.search(["UNSEEN"])) == 1
    finally:
        person.logout()


def test_every_message_is_fetched_after_uidvalidity_changes(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    raws = [make_message(f"Renumbered {n}", SENDER, address) for n in range(2)]
    for raw in raws:
        mail_servers.deliver(address, raw)
    before = {message_id_of(mail.raw): mail.server_id for mail in mailbox.fetch_new()}
    old_validity = int(next(iter(before.values())).split(":")[0])
    mailbox.close()

    mail_servers.dovecot.doveadm(
        "mailbox", "update", "-u", address, "--uid-validity", str(old_validity + 1000), "INBOX"
    )
    after = {message_id_of(mail.raw): mail.server_id for mail in mailbox.fetch_new()}

    assert set(after) == set(before) == {message_id_of(raw) for raw in raws}
    assert all(server_id.startswith(f"{old_validity + 1000}:") for server_id in after.values())
    # An id from before the renumbering still moves the right message, found by Message-ID.
    moved = message_id_of(raws[0])
    mailbox.mark_processed(before[moved], "Processed")
    assert mail_servers.message_ids(address, "Processed") == [moved]
    assert mail_servers.message_ids(address, "INBOX") == [message_id_of(raws[1])]


def test_server_restart_mid_fetch_reconnects_and_fetches(
    mail_servers: MailServers, address: str
) -> None:
    raws = [make_message(f"Mid-fetch {n}", SENDER, address) for n in range(3)]
    for raw in raws:
        mail_servers.deliver(address, raw)
    adapter = make_mailbox(mail_servers, address, fetch_batch=1)
    try:
        fetching = adapter.fetch_new()
        first = next(fetching)
        mail_servers.stop_imap()
        mail_servers.start_imap()
        rest = list(fetching)

        assert {message_id_of(mail.raw) for mail in [first, *rest]} == {
            message_id_of(raw) for raw in raws
        }
        later = make_message("After the restart", SENDER, address)
        mail_servers.deliver(address, later)
        assert message_id_of(later) in fetched_ids(adapter)
    finally:
        adapter.close()


def test_dropped_connection_is_replaced_on_the_next_call(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    fetched_ids(mailbox)
    assert mail_servers.drop_connections(address) >= 1
    raw = make_message("After the drop", SENDER, address)
    mail_servers.deliver(address, raw)

    assert message_id_of(raw) in fetched_ids(mailbox)


def test_server_down_is_a_transient_error_and_recovers(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    fetched_ids(mailbox)
    mail_servers.stop_imap()
    try:
        with pytest.raises(TransientMailboxError) as caught:
            fetched_ids(mailbox)
        assert "connection refused" in str(caught.value)
    finally:
        mail_servers.start_imap()
    raw = make_message("Server back", SENDER, address)
    mail_servers.deliver(address, raw)

    assert message_id_of(raw) in fetched_ids(mailbox)


def test_wrong_password_is_an_auth_error_in_one_line(
    mail_servers: MailServers, address: str
) -> None:
    adapter = make_mailbox(mail_servers, address, password="not-the-password")

    with pytest.raises(MailboxAuthError) as caught:
        adapter.check()

    text = str(caught.value)
    assert "\n" not in text
    assert text == (
        f"IMAP login to {mail_servers.host}:{mail_servers.imaps_port} as {address} was refused: "
        f"authentication failed"
    )


def test_wrong_smtp_password_is_an_auth_error(mail_servers: MailServers, address: str) -> None:
    # SMTP is given a password of its own, which is wrong; IMAP keeps the right one.
    adapter = make_mailbox(mail_servers, address, smtp_password="not-the-password")
    message = EmailMessage()
    message["From"] = address
    message["To"] = address
    message["Subject"] = "Refused"
    message["Message-ID"] = make_msgid(domain="partnership.test")
    message.set_content("x\n")

    with pytest.raises(MailboxAuthError) as caught:
        adapter.send(message)

    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(
        f"SMTP login to {mail_servers.host}:{mail_servers.smtp_port} as {address} was refused"
    )
    # IMAP, logging in with its own password, still reads the mailbox.
    try:
        assert list(adapter.fetch_new()) == []
    finally:
        adapter.close()


def test_untrusted_certificate_is_a_clear_error(mail_servers: MailServers, address: str) -> None:
    adapter = make_mailbox(
        mail_servers,
        address,
        imap=imap_endpoint(mail_servers, ca_file=None),
        smtp=smtp_endpoint(mail_servers, ca_file=None),
    )

    with pytest.raises(MailboxError) as caught:
        list(adapter.fetch_new())

    text = str(caught.value)
    assert not isinstance(caught.value, TransientMailboxError)
    assert "\n" not in text
    assert "certificate" in text and "could not be verified" in text and "ca_file" in text


def test_starttls_on_the_plain_imap_port_works(mail_servers: MailServers, address: str) -> None:
    adapter = make_mailbox(
        mail_servers,
        address,
        imap=imap_endpoint(mail_servers, port=mail_servers.imap_port, security="starttls"),
    )
    raw = make_message("Over STARTTLS", SENDER, address)
    mail_servers.deliver(address, raw)
    try:
        assert message_id_of(raw) in fetched_ids(adapter)
    finally:
        adapter.close()


def test_smtp_over_implicit_tls_sends(mail_servers: MailServers, address: str) -> None:
    adapter = make_mailbox(
        mail_servers,
        address,
        smtp=smtp_endpoint(mail_servers, port=mail_servers.smtps_port, security="ssl"),
    )
    message = EmailMessage()
    message["From"] = address
    message["To"] = "nurse@health.test"
    message["Subject"] = "Rapid Review invitation"
    message["Message-ID"] = make_msgid(domain="partnership.test")
    message.set_content("Please attend.\n")
    try:
        adapter.send(message)
    finally:
        adapter.close()

    assert str(message["Message-ID"]) in mail_servers.message_ids(address, "Sent")
    assert any(mail.recipient == "nurse@health.test" for mail in mail_servers.relayed())


def test_plain_smtp_is_refused_for_a_remote_host() -> None:
    with pytest.raises(ValueError, match="only allowed"):
        SmtpEndpoint("imap.example.org", security="plain")


def test_move_falls_back_to_copy_when_the_server_lacks_move(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    raw = make_message("No MOVE here", SENDER, address)
    mail_servers.deliver(address, raw)
    mail = next(iter(mailbox.fetch_new()))
    mailbox.imap.session.capabilities = mailbox.imap.session.capabilities - {"MOVE"}

    mailbox.mark_processed(mail.server_id, "Processed")

    assert mail_servers.message_ids(address, "Processed") == [message_id_of(raw)]
    assert mail_servers.message_ids(address, "INBOX") == []


def test_check_lists_the_folders_and_whether_each_exists(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    mail_servers.deliver(address, make_message("One", SENDER, address))
    lines = mailbox.check()

    assert any(line.startswith("INBOX: exists (1 messages)") for line in lines)
    assert any(line.startswith("Processed: missing") for line in lines)
    assert any(line.startswith("Quarantine: missing") for line in lines)
    assert any(line.startswith("Sent: missing") for line in lines)
    assert lines[-1].startswith("SMTP ")


def test_a_released_message_moves_from_quarantine_to_processed_once(
    mail_servers: MailServers, address: str, mailbox: ImapSmtpMailbox
) -> None:
    # Given a message the engine filed in Quarantine,
    raw = make_message("Held referral", SENDER, address)
    mail_servers.deliver(address, raw)
    mail = next(iter(mailbox.fetch_new()))
    mailbox.mark_processed(mail.server_id, "Quarantine")
    # when it is released (twice, as after a crash),
    mailbox.refile(mail.server_id, message_id_of(raw), "Quarantine", "Processed")
    mailbox.refile(mail.server_id, message_id_of(raw), "Quarantine", "Processed")
    # then its one copy is in Processed and none is left in Quarantine;
    assert mail_servers.message_ids(address, "Processed") == [message_id_of(raw)]
    assert mail_servers.message_ids(address, "Quarantine") == []
    # and one that is in neither folder is a one-line error.
    with pytest.raises(MailboxError, match="in neither Quarantine nor Processed"):
        mailbox.refile("1:99", "<gone@example.test>", "Quarantine", "Processed")
