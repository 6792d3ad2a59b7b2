"""A composed meeting request with a file keeps the structure Outlook reads, through SMTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from icalendar import Calendar

from bot.kernel.compose import compose_mail
from bot.kernel.outbox import Attachment
from bot.kernel.outgoing import from_bytes
from tests.adapters.mail.harness_imap import make_mailbox
from tests.kernel.test_compose import meeting_and_form
from tests.servers.fixtures import MailServers

SUBJECT = "Réunion Rapid Review RR-2027-001 — invitation 📅 for the agencies' leads, Day 13"
MESSAGE_ID = "<rr.0123456789abcdef0123456789abcdef@partnership.test>"
OUTLOOK_ID = ("<DB9PR01MB1234567890ABCDEF1234567890ABCDEF@DB9PR01MB1234.eurprd01.prod"
              ".exchangelabs.com>")
CALENDAR = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//rrbot//EN\r\nMETHOD:REQUEST\r\n"
            b"BEGIN:VEVENT\r\nUID:RR-2027-001-rr-meeting-gp@partnership.test\r\n"
            b"DTSTAMP:20270104T090000Z\r\nDTSTART:20270111T100000Z\r\n"
            b"DTEND:20270111T120000Z\r\nSUMMARY:Rapid Review meeting\r\n"
            b"ATTENDEE;CN=Zo\xc3\xab Bront\xc3\xab:mailto:zoe@gp.example\r\n"
            b"END:VEVENT\r\nEND:VCALENDAR\r\n")
FORM = bytes(range(256)) * 40
FORM_NAME = "Formulaire de l'agence — RR-2027-001.docx"


def delivered(servers: MailServers, address: str, timeout: float = 5.0) -> EmailMessage:
    """Fetch the recipient's one message over IMAP (delivery may take a moment)."""
    reader = make_mailbox(servers, address)
    deadline = time.monotonic() + timeout
    try:
        while True:
            fetched = list(reader.fetch_new())
            if fetched or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # real-time ok
    finally:
        reader.close()
    [mail] = fetched
    assert all(len(line) <= 998 for line in mail.raw.split(b"\r\n"))
    assert f"\nIn-Reply-To: {OUTLOOK_ID}".encode() in mail.raw.replace(b"\r\n", b"\n")
    message = message_from_bytes(mail.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_composed_meeting_request_survives_smtp_as_outlook_reads_it(
    mail_servers: MailServers,
) -> None:
    # Given the bot's mailbox and an agency lead's on the test servers, and a meeting request
    # with a form, a subject beyond ASCII and a reply to an Outlook message, composed,
    bot = mail_servers.new_user("bot")
    lead = mail_servers.new_user("lead")
    payload = compose_mail(
        sender=bot, sender_name="Partenariat de Sûreté", to=[lead], cc=["nurse@health.test"],
        subject=SUBJECT, date=datetime(2027, 1, 4, 9, tzinfo=UTC), message_id=MESSAGE_ID,
        key="RR-2027-001:agency:gp:meeting:0", text="Please come to the meeting.\n",
        html="<p>Please come to the meeting — Day 13.</p>\n", in_reply_to=OUTLOOK_ID,
        attachments=[Attachment("rapid-review-meeting.ics", CALENDAR, "text", "calendar",
                                method="REQUEST"),
                     Attachment(FORM_NAME, FORM, "application", "octet-stream")])
    # when it is sent through SMTP (kept in Sent) and fetched by the lead over IMAP,
    sender = make_mailbox(mail_servers, bot)
    try:
        sender.send_raw(from_bytes(payload, MESSAGE_ID))
    finally:
        sender.close()
    message = delivered(mail_servers, lead)
    # then the subject and name read as written,
    assert str(message["Subject"]) == SUBJECT
    assert message["From"].addresses[0].display_name == "Partenariat de Sûreté"
    # the calendar is inside the multipart/alternative with its method, after the text and
    # HTML, and the form beside it as an attachment, its name and bytes intact,
    calendar_part, form = meeting_and_form(message)
    calendar = Calendar.from_ical(calendar_part.get_content())
    event = next(iter(calendar.walk("VEVENT")))
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event["ATTENDEE"].params["CN"] == "Zoë Brontë"
    assert form.get_filename() == FORM_NAME
    assert form.get_payload(decode=True) == FORM
    # the copy to another domain went out the same, and the sent copy is in Sent.
    [relayed] = [mail for mail in mail_servers.relayed() if mail.recipient == "nurse@health.test"
                 and MESSAGE_ID.encode() in mail.raw]
    assert message_from_bytes(relayed.raw, policy=policy.default)["Subject"] == SUBJECT
    assert MESSAGE_ID in mail_servers.message_ids(bot, "Sent")
