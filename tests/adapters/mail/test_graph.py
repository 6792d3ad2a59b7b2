"""GraphMailbox against the loopback Graph server: throttling, delta resync, lost sends, auth."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from bot.adapters.mail.graph import GraphMailbox
from bot.adapters.mail.graph_client import GraphApp, GraphClient
from bot.kernel.mailbox import (
    OUTBOX_KEY_HEADER,
    MailboxAuthError,
    MemoryCursorStore,
    TransientMailboxError,
)
from tests.adapters.mail.harness_graph import make_graph_mailbox
from tests.adapters.mail.loopback_graph import Fault, LoopbackGraph


def _raw(n: int) -> bytes:
    return (
        f"From: social.worker@example.org\r\nTo: lscp@example.gov.uk\r\n"
        f"Subject: Notification {n}\r\nMessage-ID: <n{n}@example.org>\r\n\r\nBody {n}\r\n"
    ).encode()


def _outgoing(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "lscp@example.gov.uk"
    message["To"] = "chair@example.gov.uk"
    message["Subject"] = "Rapid Review scheduled"
    message["Message-ID"] = message_id
    message[OUTBOX_KEY_HEADER] = "outbox-42"
    message.set_content("The Rapid Review meets on Thursday.")
    return message


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoopbackGraph]:
    graph = LoopbackGraph(tmp_path).start()
    yield graph
    graph.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def mailbox(server: LoopbackGraph, sleeps: list[float]) -> Iterator[GraphMailbox]:
    box = make_graph_mailbox(server, sleep=sleeps.append)
    yield box
    box.close()


def test_429_retry_after_is_honoured(
    server: LoopbackGraph, mailbox: GraphMailbox, sleeps: list[float]
) -> None:
    server.deliver(_raw(1))
    server.add_fault(Fault(match="/delta", count=2, status=429, retry_after="7"))
    fetched = list(mailbox.fetch_new())
    assert [m.raw for m in fetched] == [_raw(1)]
    assert sleeps == [7.0, 7.0]


def test_503_retry_after_is_honoured(
    server: LoopbackGraph, mailbox: GraphMailbox, sleeps: list[float]
) -> None:
    server.deliver(_raw(1))
    server.add_fault(Fault(match="/$value", count=1, status=503, retry_after="3"))
    assert len(list(mailbox.fetch_new())) == 1
    assert sleeps == [3.0]


def test_persistent_throttling_raises_transient_with_retry_after(
    server: LoopbackGraph, mailbox: GraphMailbox, sleeps: list[float]
) -> None:
    server.add_fault(Fault(match="/delta", count=99, status=429, retry_after="11"))
    with pytest.raises(TransientMailboxError) as caught:
        list(mailbox.fetch_new())
    assert caught.value.retry_after == 11.0
    assert sleeps == [11.0, 11.0, 11.0]


def test_overlong_retry_after_is_handed_to_the_engine(
    server: LoopbackGraph, mailbox: GraphMailbox, sleeps: list[float]
) -> None:
    server.add_fault(Fault(match="/delta", count=1, status=429, retry_after="3600"))
    with pytest.raises(TransientMailboxError) as caught:
        list(mailbox.fetch_new())
    assert caught.value.retry_after == 3600.0
    assert sleeps == []


def test_expired_delta_link_resyncs_without_new_ids(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    for n in range(3):
        server.deliver(_raw(n))
    first = [m.server_id for m in mailbox.fetch_new()]
    mailbox.mark_processed(first[0], "Processed")
    server.expire_delta_links()
    server.deliver(_raw(3))
    second = [m.server_id for m in mailbox.fetch_new()]
    # The two unprocessed messages keep their ids; only the new one is added.
    assert second[:2] == first[1:]
    assert len(second) == 3 and len(set(second)) == 3
    assert first[0] not in second
    statuses = [p for m, p in server.requests if p.endswith("/delta")]
    assert len(statuses) >= 3


def test_delta_paging_and_at_least_once(server: LoopbackGraph, tmp_path: Path) -> None:
    store = MemoryCursorStore()
    box = make_graph_mailbox(server, cursor_store=store, page_size=2)
    for n in range(5):
        server.deliver(_raw(n))
    ids = [m.server_id for m in box.fetch_new()]
    assert len(ids) == 5
    box.mark_processed(ids[1], "Processed")
    box.close()
    # A new adapter on the same cursor store (a restart) still returns the unprocessed ones.
    again = make_graph_mailbox(server, cursor_store=store, page_size=2)
    assert [m.server_id for m in again.fetch_new()] == [i for i in ids if i != ids[1]]
    again.close()
    assert any("$skiptoken" not in p for _, p in server.requests)


def test_message_moved_away_by_someone_else_stops_being_returned(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    server.deliver(_raw(1))
    [fetched] = list(mailbox.fetch_new())
    with server.lock:
        message = server.state.messages[fetched.server_id]
        server.move(message, server._folder_key("deleteditems"))
    assert list(mailbox.fetch_new()) == []


def test_lost_send_confirmation_is_found_in_sent(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    server.add_fault(Fault(match="/send", count=1, drop_after_action=True))
    with pytest.raises(TransientMailboxError):
        mailbox.send(_outgoing("<lost@rrbot.example>"))
    assert mailbox.find_sent("<lost@rrbot.example>")
    assert server.message_ids_in("sentitems") == ["<lost@rrbot.example>"]


def test_lost_draft_confirmation_is_reused_not_duplicated(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    server.add_fault(Fault(match="/messages", method="POST", count=1, drop_after_action=True))
    with pytest.raises(TransientMailboxError):
        mailbox.send(_outgoing("<draft@rrbot.example>"))
    assert not mailbox.find_sent("<draft@rrbot.example>")
    mailbox.send(_outgoing("<draft@rrbot.example>"))
    assert server.message_ids_in("sentitems") == ["<draft@rrbot.example>"]
    assert server.message_ids_in("drafts") == []


def test_sent_mime_keeps_message_id_and_outbox_key(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    mailbox.send(_outgoing("<k@rrbot.example>"))
    [message] = [m for m in server.state.messages.values() if not m.is_draft]
    assert b"X-RRBot-Key: outbox-42" in message.mime
    assert mailbox.find_sent("<k@rrbot.example>")
    assert not mailbox.find_sent("<other@rrbot.example>")


def test_wrong_secret_is_auth_error(server: LoopbackGraph) -> None:
    box = make_graph_mailbox(server, client_secret="wrong")
    with pytest.raises(MailboxAuthError, match="invalid_client") as caught:
        list(box.fetch_new())
    assert "\n" not in str(caught.value)
    box.close()


def test_unknown_tenant_is_auth_error(server: LoopbackGraph) -> None:
    box = make_graph_mailbox(server, tenant_id="no-such-tenant")
    with pytest.raises(MailboxAuthError, match="no-such-tenant"):
        box.check()


def test_rejected_token_is_auth_error(server: LoopbackGraph, mailbox: GraphMailbox) -> None:
    mailbox.check()
    with server.lock:
        server.state.tokens.clear()
    with pytest.raises(MailboxAuthError, match="InvalidAuthenticationToken"):
        mailbox.check()


def test_at_most_four_concurrent_requests(server: LoopbackGraph) -> None:
    box = make_graph_mailbox(server, max_concurrency=4)
    for n in range(12):
        server.deliver(_raw(n))
    server.delay = 0.05
    fetched = list(box.fetch_new())
    box.close()
    assert len(fetched) == 12
    assert server.max_in_flight == 4


def test_wait_for_mail_polls_with_injected_sleep(
    server: LoopbackGraph, sleeps: list[float]
) -> None:
    box = make_graph_mailbox(server, sleep=sleeps.append, poll_seconds=5)
    assert box.wait_for_mail(12) is False
    assert sleeps == [5, 5, 2]
    server.deliver(_raw(1))
    assert box.wait_for_mail(12) is True
    box.close()


def test_check_and_close_then_reuse(server: LoopbackGraph, mailbox: GraphMailbox) -> None:
    lines = mailbox.check()
    assert len(lines) == 3 and "Inbox" in lines[0]
    mailbox.close()
    server.deliver(_raw(1))
    assert len(list(mailbox.fetch_new())) == 1


@pytest.mark.live
@pytest.mark.skipif(
    not os.environ.get("RRBOT_LIVE_GRAPH_TENANT"), reason="needs RRBOT_LIVE_GRAPH_* credentials"
)
def test_live_graph_smoke() -> None:
    app = GraphApp(
        tenant_id=os.environ["RRBOT_LIVE_GRAPH_TENANT"],
        client_id=os.environ["RRBOT_LIVE_GRAPH_CLIENT_ID"],
        client_secret=os.environ["RRBOT_LIVE_GRAPH_SECRET"],
    )
    box = GraphMailbox(GraphClient(app, os.environ["RRBOT_LIVE_GRAPH_MAILBOX"]))
    try:
        assert box.check()
        list(box.fetch_new())
    finally:
        box.close()


def _report(message_id: str, megabytes: int = 10) -> EmailMessage:
    """Return the submission with a report of the given size, its bytes the same every run."""
    message = _outgoing(message_id)
    content = random.Random(message_id).randbytes(megabytes * 1024 * 1024)
    message.add_attachment(content, maintype="application", subtype="pdf",
                           filename="rapid-review-report.pdf")
    return message


def _sent_report(server: LoopbackGraph) -> bytes:
    [message] = [m for m in server.state.messages.values() if not m.is_draft]
    [(name, kind, content)] = message.attachments
    assert (name, kind) == ("rapid-review-report.pdf", "application/pdf")
    return content


def test_a_10_mb_report_goes_through_an_upload_session(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    # Given a submission carrying a 10 MB report (Graph refuses bodies over 4 MB),
    report = _report("<report@rrbot.example>")
    # when it is sent,
    mailbox.send(report)
    # then the draft was made without the file, the file went up in chunks through an upload
    # session, and Sent Items holds the message, its headers and the whole report.
    methods = [method for method, path in server.requests if path.startswith("/upload/")]
    assert methods and set(methods) == {"PUT"}
    assert any(path.endswith("/attachments/createUploadSession")
               for _method, path in server.requests)
    assert mailbox.find_sent("<report@rrbot.example>")
    [message] = [m for m in server.state.messages.values() if not m.is_draft]
    assert b"X-RRBot-Key: outbox-42" in message.mime
    attachment = report.get_payload()[1]
    assert _sent_report(server) == attachment.get_payload(decode=True)
    assert server.message_ids_in("drafts") == []


def test_a_lost_send_of_a_large_report_is_found_in_sent(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    # Given the connection dropped after Graph sent the large message,
    server.add_fault(Fault(match="/send", count=1, drop_after_action=True))
    with pytest.raises(TransientMailboxError):
        mailbox.send(_report("<lost-report@rrbot.example>"))
    # then the look-up in Sent finds it, once.
    assert mailbox.find_sent("<lost-report@rrbot.example>")
    assert server.message_ids_in("sentitems") == ["<lost-report@rrbot.example>"]


def test_a_draft_left_without_its_report_is_made_again(
    server: LoopbackGraph, mailbox: GraphMailbox
) -> None:
    # Given an attempt that made the draft but could not start the report's upload,
    server.add_fault(Fault(match="createUploadSession", count=4, status=503))
    with pytest.raises(TransientMailboxError):
        mailbox.send(_report("<retry-report@rrbot.example>"))
    assert server.message_ids_in("drafts") == ["<retry-report@rrbot.example>"]
    # when the outbox tries again,
    mailbox.send(_report("<retry-report@rrbot.example>"))
    # then the incomplete draft was replaced, and one message with the whole report went.
    assert server.message_ids_in("drafts") == []
    assert server.message_ids_in("sentitems") == ["<retry-report@rrbot.example>"]
    assert len(_sent_report(server)) == 10 * 1024 * 1024


def test_refile_finds_the_message_by_internet_message_id_and_survives_a_lost_reply(
    server: LoopbackGraph, mailbox: GraphMailbox, sleeps: list[float]
) -> None:
    # Given a released message the bot filed in Quarantine,
    server.deliver(_raw(1))
    [mail] = list(mailbox.fetch_new())
    mailbox.mark_processed(mail.server_id, "Quarantine")
    quarantine = server.folder_by_name("Quarantine")
    assert quarantine is not None
    # when its move to Processed is throttled once, and the reply to the move is then lost,
    server.add_fault(Fault(match="/move", count=1, status=429, retry_after="2"))
    server.add_fault(Fault(match="/move", count=1, drop_after_action=True))
    with pytest.raises(TransientMailboxError):
        mailbox.refile(mail.server_id, "<n1@example.org>", "Quarantine", "Processed")
    # then it was looked for by internetMessageId in Quarantine, the wait was honoured and it
    # moved;
    assert ("GET", f"/v1.0/users/{server.state.mailbox}/mailFolders/{quarantine.id}/messages"
            ) in server.requests
    assert sleeps == [2.0]
    assert server.message_ids_in("Processed") == ["<n1@example.org>"]
    # and the next attempt finds it already in Processed, which is not an error.
    mailbox.refile(mail.server_id, "<n1@example.org>", "Quarantine", "Processed")
    assert server.message_ids_in("Processed") == ["<n1@example.org>"]
    assert server.message_ids_in("Quarantine") == []
