"""The outbox sends its stored bytes unparsed, dated when they go, to the envelope's recipients."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, getaddresses
from pathlib import Path

import pytest

from bot.kernel.dispatch import Dispatcher
from bot.kernel.headers import UnsafeHeader
from bot.kernel.outbox import enqueue_mail
from bot.kernel.outgoing import OutgoingMail, _addresses, dated, from_bytes
from bot.process.working_days import parse_instant
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage

QUEUED = parse_instant("2027-01-13T09:00")
SENT = parse_instant("2027-01-14T16:00")


class RawMailbox:
    """A mailbox that only takes bytes, keeping each outgoing mail it is given."""

    name = "rapidreview@exampleshire.example"

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    def send_raw(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)

    def find_sent(self, message_id: str) -> bool:
        return False


def test_a_queued_message_goes_as_its_stored_bytes_with_only_the_date_changed(
    tmp_path: Path,
) -> None:
    # Given a message with a copy and an attachment queued on one day,
    database = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    upgrade(database)
    with transaction(database) as session:
        row = enqueue_mail(
            session, partnership="exampleshire", key="k:1", purpose="reminder",
            sender="rapidreview@exampleshire.example", sender_name="Rapid Review",
            to=["avery.housing@homes.example"], cc=["lee.safeguarding@gp.example"],
            subject="Information request", text="Please reply.\nDate: not a header",
            now=QUEUED, html="<p>Please reply.</p>")
        payload, message_id = row.payload, row.message_id
    # when it is sent the next day,
    mailbox = RawMailbox()
    Dispatcher(database, mailbox).dispatch(SENT)  # type: ignore[arg-type]
    with transaction(database) as session:
        status = session.get_one(OutboxMessage, row.id).status
    database.dispose()
    # then the mailbox got the stored bytes, CRLF line ends, with the Date of the sending,
    assert status == "sent"
    [mail] = mailbox.sent
    crlf = payload.replace(b"\n", b"\r\n")
    old = f"Date: {format_datetime(QUEUED)}\r\n".encode()
    new = f"Date: {format_datetime(SENT)}\r\n".encode()
    assert crlf.count(old) == 1
    assert mail.raw == crlf.replace(old, new)
    # and the envelope is ours and every addressee's, with the row's Message-ID.
    assert mail.sender == "rapidreview@exampleshire.example"
    assert mail.recipients == ("avery.housing@homes.example", "lee.safeguarding@gp.example")
    assert mail.message_id == message_id
    assert mail.message()["Date"].datetime == SENT


def test_only_the_header_block_is_redated() -> None:
    # Given a message without a Date header whose body has a line that looks like one,
    raw = b"From: a@b.example\nTo: c@d.example\n\nDate: in the body\n"
    mail = from_bytes(raw, "<x@b.example>")
    # when it is dated,
    sent = dated(mail, SENT + timedelta(minutes=1))
    # then the Date goes at the top and the body is untouched.
    assert sent.raw.startswith(b"Date: ")
    assert sent.raw.endswith(b"\r\n\r\nDate: in the body\r\n")
    assert sent.recipients == ("c@d.example",)


def test_a_date_with_a_line_break_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a date formatter gone wrong,
    monkeypatch.setattr("bot.kernel.outgoing.format_datetime", lambda _when: "x\r\nBcc: e@f")
    # then the header is refused, not written.
    with pytest.raises(UnsafeHeader):
        dated(from_bytes(b"To: c@d.example\n\nhello\n", "<x@b.example>"), SENT)


@pytest.mark.parametrize("fields", [
    ["a@b.example"],
    ["a@b.example, c@d.example", " e@f.example "],
    ["a@b.example,,c@d.example"],
    ['"Lee, Dr" <lee@gp.example>, avery@homes.example'],
    ["Avery Housing <avery@homes.example>"],
    ["undisclosed-recipients:;"],
    ["lee@gp.example (on leave), avery@homes.example"],
    ["=?utf-8?q?r=C3=A9f?=@homes.example"],
])
def test_the_envelope_reads_address_lists_as_the_email_package_does(fields: list[str]) -> None:
    # Given To and Cc fields of bare addresses, named ones, groups and comments,
    # when their addresses are read for the envelope, then they are the email package's.
    assert _addresses(fields) == tuple(address for _name, address in getaddresses(fields)
                                       if address)
