"""EwsMailbox driving exchangelib against the loopback EWS server: busy server, lost sends, auth."""

from __future__ import annotations

import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from exchangelib.protocol import BaseProtocol, close_connections

from bot.adapters.mail.ews import EwsMailbox
from bot.kernel.mailbox import (
    OUTBOX_KEY_HEADER,
    MailboxAuthError,
    MailboxError,
    TransientMailboxError,
)
from tests.adapters.mail.harness_ews import make_ews_mailbox
from tests.adapters.mail.loopback_ews import Fault, LoopbackEws
from tests.servers.dovecot import make_certificate


def _raw(n: int) -> bytes:
    return (
        f"From: social.worker@example.org\r\nTo: lscp@council.example.gov.uk\r\n"
        f"Subject: Notification {n}\r\nMessage-ID: <n{n}@example.org>\r\n\r\nBody {n}\r\n"
    ).encode()


def _outgoing(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "lscp@council.example.gov.uk"
    message["To"] = "chair@example.gov.uk"
    message["Subject"] = "Rapid Review scheduled"
    message["Message-ID"] = message_id
    message[OUTBOX_KEY_HEADER] = "outbox-7"
    message.set_content("The Rapid Review meets on Thursday.")
    return message


@pytest.fixture
def server() -> Iterator[LoopbackEws]:
    ews = LoopbackEws().start()
    yield ews
    close_connections()
    ews.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def mailbox(server: LoopbackEws, sleeps: list[float]) -> Iterator[EwsMailbox]:
    box = make_ews_mailbox(server, sleep=sleeps.append)
    yield box
    box.close()


def test_fetch_is_at_least_once_and_ids_are_stable(
    server: LoopbackEws, mailbox: EwsMailbox
) -> None:
    for n in range(12):
        server.deliver(_raw(n))
    first = list(mailbox.fetch_new())
    second = list(mailbox.fetch_new())
    assert [m.raw for m in first] == [_raw(n) for n in range(12)]
    assert [m.server_id for m in first] == [m.server_id for m in second]
    mailbox.mark_processed(first[0].server_id, "Processed")
    assert len(list(mailbox.fetch_new())) == 11
    assert server.message_ids_in("Processed") == ["<n0@example.org>"]


def test_existing_folder_is_reused(server: LoopbackEws, mailbox: EwsMailbox) -> None:
    server.deliver(_raw(1))
    server.deliver(_raw(2))
    ids = [m.server_id for m in mailbox.fetch_new()]
    mailbox.mark_processed(ids[0], "Processed")
    mailbox.close()
    mailbox.mark_processed(ids[1], "Processed")
    assert server.operations.count("CreateFolder") == 1
    assert sorted(server.message_ids_in("Processed")) == ["<n1@example.org>", "<n2@example.org>"]


def test_server_busy_back_off_is_honoured(
    server: LoopbackEws, mailbox: EwsMailbox, sleeps: list[float]
) -> None:
    server.deliver(_raw(1))
    server.add_fault(Fault(count=2, operation="FindItem", back_off_ms=2500))
    assert len(list(mailbox.fetch_new())) == 1
    assert sleeps == [2.5, 2.5]


def test_persistent_busy_raises_transient_with_retry_after(
    server: LoopbackEws, mailbox: EwsMailbox, sleeps: list[float]
) -> None:
    server.add_fault(Fault(count=99, operation="FindItem", back_off_ms=4000))
    with pytest.raises(TransientMailboxError) as caught:
        list(mailbox.fetch_new())
    assert caught.value.retry_after == 4.0
    assert sleeps == [4.0, 4.0, 4.0]


def test_send_keeps_message_id_and_outbox_key(server: LoopbackEws, mailbox: EwsMailbox) -> None:
    mailbox.send(_outgoing("<sent@rrbot.example>"))
    assert server.message_ids_in("sentitems") == ["<sent@rrbot.example>"]
    [item] = server.items.values()
    assert b"X-RRBot-Key: outbox-7" in item.mime
    assert mailbox.find_sent("<sent@rrbot.example>")
    assert not mailbox.find_sent("<unknown@rrbot.example>")


def test_lost_send_confirmation_is_found_in_sent(
    server: LoopbackEws, mailbox: EwsMailbox, sleeps: list[float]
) -> None:
    mailbox.check()
    server.add_fault(Fault(count=1, operation="CreateItem", kind="drop"))
    with pytest.raises(TransientMailboxError):
        mailbox.send(_outgoing("<lost@rrbot.example>"))
    # The send was not repeated by the adapter, and Sent holds exactly one copy.
    assert server.operations.count("CreateItem") == 1
    assert mailbox.find_sent("<lost@rrbot.example>")
    assert server.message_ids_in("sentitems") == ["<lost@rrbot.example>"]


def test_wrong_password_is_auth_error(server: LoopbackEws) -> None:
    box = make_ews_mailbox(server, password="wrong")
    with pytest.raises(MailboxAuthError) as caught:
        list(box.fetch_new())
    assert "\n" not in str(caught.value)
    box.close()


def test_wait_for_mail_polls_with_injected_sleep(server: LoopbackEws) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            server.deliver(_raw(1))

    box = make_ews_mailbox(server, sleep=sleep, poll_seconds=5)
    assert box.wait_for_mail(30) is True
    assert slept == [5, 5]
    slept.clear()
    box2 = make_ews_mailbox(server, sleep=slept.append, poll_seconds=5)
    assert box2.wait_for_mail(12) is False
    assert slept == [5, 5, 2]
    box.close()
    box2.close()


def test_check_lists_folders(mailbox: EwsMailbox) -> None:
    lines = mailbox.check()
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == ["Inbox", "Sent Items"]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LoopbackEws, Path]]:
    """Serve EWS over HTTPS with a certificate that no public authority signed."""
    certificate = make_certificate(tmp_path)
    ews = LoopbackEws(certificate=(certificate, tmp_path / "key.pem")).start()
    adapter = BaseProtocol.HTTP_ADAPTER_CLS
    yield ews, certificate
    # Trusting a council's authority is process-wide in exchangelib; later tests start afresh.
    BaseProtocol.HTTP_ADAPTER_CLS = adapter
    close_connections()
    ews.stop()


def test_a_certificate_from_an_untrusted_authority_is_one_line_without_retries(
    tls_server: tuple[LoopbackEws, Path], sleeps: list[float]
) -> None:
    # Given Exchange behind a certificate from the council's own authority, not configured,
    server, _certificate = tls_server
    mailbox = make_ews_mailbox(server, sleep=sleeps.append)
    # when the bot fetches, it gets one line naming the setting, at once (no back-off).
    with pytest.raises(MailboxError) as raised:
        list(mailbox.fetch_new())
    assert not isinstance(raised.value, TransientMailboxError)
    assert "could not be verified; set [mailbox.ews] ca_file" in str(raised.value)
    assert "\n" not in str(raised.value) and sleeps == []
    mailbox.close()


def test_ca_file_trusts_the_councils_own_authority(
    tls_server: tuple[LoopbackEws, Path]
) -> None:
    # Given the same server, and its authority's certificate as [mailbox.ews] ca_file,
    server, certificate = tls_server
    server.deliver(_raw(1))
    mailbox = make_ews_mailbox(server, ca_file=str(certificate))
    # then the bot fetches over verified TLS.
    assert [m.raw for m in mailbox.fetch_new()] == [_raw(1)]
    mailbox.close()


def test_needs_some_credentials() -> None:
    with pytest.raises(ValueError):
        EwsMailbox(endpoint="https://mail.example/EWS/Exchange.asmx", primary_smtp_address="a@b")


@pytest.mark.live
@pytest.mark.skipif(
    not os.environ.get("RRBOT_LIVE_EWS_ENDPOINT"), reason="needs RRBOT_LIVE_EWS_* credentials"
)
def test_live_ews_smoke() -> None:
    box = EwsMailbox(
        endpoint=os.environ["RRBOT_LIVE_EWS_ENDPOINT"],
        primary_smtp_address=os.environ["RRBOT_LIVE_EWS_MAILBOX"],
        username=os.environ["RRBOT_LIVE_EWS_USERNAME"],
        password=os.environ["RRBOT_LIVE_EWS_PASSWORD"],
        auth_type=os.environ.get("RRBOT_LIVE_EWS_AUTH", "NTLM"),
    )
    try:
        assert box.check()
        list(box.fetch_new())
    finally:
        box.close()


def test_refile_finds_the_message_by_message_id_and_survives_a_lost_reply(
    server: LoopbackEws, mailbox: EwsMailbox, sleeps: list[float]
) -> None:
    # Given a released message the bot filed in Quarantine,
    server.deliver(_raw(1))
    [mail] = list(mailbox.fetch_new())
    mailbox.mark_processed(mail.server_id, "Quarantine")
    server.operations.clear()
    # when the reply to its move to Processed is lost once,
    server.add_fault(Fault(count=1, operation="MoveItem", kind="drop"))
    mailbox.refile(mail.server_id, "<n1@example.org>", "Quarantine", "Processed")
    # then it was found by Message-ID in Quarantine and moved once (Processed made first), and
    # the retry found it gone from Quarantine and already in Processed.
    assert server.operations == ["FindItem", "FindFolder", "CreateFolder", "MoveItem",
                                 "FindItem", "FindItem"]
    assert server.message_ids_in("Processed") == ["<n1@example.org>"]
    assert server.message_ids_in("Quarantine") == []
    assert len(sleeps) == 1
