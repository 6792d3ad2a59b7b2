"""The composer writes what the email package wrote, in short lines, and refuses line breaks."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.kernel.compose import compose_mail, header_field
from bot.kernel.headers import UnsafeHeader
from bot.kernel.outbox import Attachment, display_name, enqueue_mail, one_line
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from tests.kernel.email_package_mail import email_package_mail

SENT = datetime(2027, 1, 13, 9, 30, tzinfo=UTC)
OUTLOOK_ID = ("<DB9PR01MB1234567890ABCDEF1234567890ABCDEF@DB9PR01MB1234.eurprd01.prod"
              ".exchangelabs.com>")
CALENDAR = ("BEGIN:VCALENDAR\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nSUMMARY:Rapid Review meeting"
            " for RR-2027-001 with the agencies named in the notification\r\n ATTENDEE;CN=Zoë"
            " Brontë:mailto:zoe@gp.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
BINARY = bytes(range(256)) * 3
BASE: dict[str, Any] = dict(
    sender="rapidreview@exampleshire.example",
    sender_name="Exampleshire Safeguarding Children Partnership",
    to=["lee.safeguarding@gp.example"], subject="[RR-2027-001] Due 16:00 on Wednesday",
    date=SENT, message_id="<rr.0123456789abcdef0123456789abcdef@exampleshire.example>",
    key="RR-2027-001:milestone:reminder", text="Dear Lee,\n\nPlease reply.\n")
# Each case changes the base message in one way the bot's mail can differ.
CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "accented subject": {"subject": "Réunion: Case RR-2027-001 — agences"},
    "emoji subject": {"subject": "Meeting 📅 tomorrow 🙂 for RR-2027-001"},
    "right-to-left subject": {"subject": "اجتماع المراجعة السريعة RR-2027-001 שלום"},
    "all non-ascii subject": {"subject": "子供の安全" * 30},
    "long subject with spaces": {"subject": "Agency returns due " * 12},
    "long subject without spaces": {"subject": "x" * 300},
    "subject with a word longer than a line": {"subject": "Re: " + "y" * 1200 + " end"},
    "long accented subject": {"subject": "Réunion des agences " * 10},
    "subject with encoded-word text": {"subject": "=?utf-8?q?Caf=C3=A9?= today"},
    "subject with quotes and specials": {"subject": 'Re: "urgent" (a, b; c) <x@y> \\ _=?'},
    "long display name": {"sender_name": "Metropolitan Borough of Exampleshire Safeguarding"
                                         " Children Partnership Business Unit Team"},
    "display name with quotes, comma and @": {"sender_name": 'Lee "Duty", Manager @ GP'},
    "display name with dot": {"sender_name": "St. Helens Safeguarding"},
    "accented display name": {"sender_name": "Zoë Brontë, Partenariat de Sûreté"},
    "long accented display name": {"sender_name": "Partenariat été " * 8},
    "no display name": {"sender_name": ""},
    "no To": {"to": []},
    "several To and Cc": {"to": [f"lead{n}@agency{n}.example" for n in range(6)],
                          "cc": [f"copy{n}.person@council{n}.example" for n in range(4)]},
    "one Cc": {"cc": ["manager@exampleshire.example"]},
    "long lines": {"text": "word " * 300 + "\n" + "y" * 1200 + "\n"},
    "From and dot lines": {"text": "From the GP\n.\nFrom here\n..\n"},
    "CR-only and CRLF": {"text": "one\rtwo\r\nthree\n\rfour"},
    "trailing spaces": {"text": "ends with spaces   \nand a tab\t\n   "},
    "no trailing newline": {"text": "no newline at the end"},
    "empty text": {"text": ""},
    "blank lines at the end": {"text": "a\n\n\n"},
    "non-ascii text": {"text": "Réunion à 10h – £20, “quotes”, 子供, 🙂\n"},
    "text with NUL and controls": {"text": "a\x00b\x0cc\x0bd\x85e\u2028f"},
    "html": {"html": "<html><body><p>Dear Lee,</p><p>" + "Please reply. " * 40
                     + "</p></body></html>\n"},
    "non-ascii html": {"html": "<p>Réunion — £20</p>"},
    "meeting request": {"html": "<p>Meeting</p>", "attachments": [
        Attachment("rapid-review-meeting.ics", CALENDAR.format(method="REQUEST").encode(),
                   "text", "calendar", method="REQUEST")]},
    "meeting cancel without html": {"attachments": [
        Attachment("rapid-review-meeting.ics", CALENDAR.format(method="CANCEL").encode(),
                   "text", "calendar", method="CANCEL")]},
    "files": {"html": "<p>Forms</p>", "attachments": [
        Attachment("GP form RR-2027-001.docx", BINARY, "application",
                   "vnd.openxmlformats-officedocument.wordprocessingml.document"),
        Attachment("Réunion — chronologie complète du cas numéro RR-2027-001 pour le panel"
                   " national.pdf", BINARY[:100], "application", "pdf"),
        Attachment('a "quoted" name; with (specials).txt', b"plain text\n", "text", "plain"),
        Attachment("Chronology for the Rapid Review of case RR-2027-001 (combined, all"
                   " agencies) final version.xlsx", b"", "application", "octet-stream"),
        Attachment("", b"\x00\x01", "application", "octet-stream"),
        Attachment("子供.csv", b"a,b\n", "text", "csv")]},
    "meeting and files": {"html": "<p>Meeting</p>", "attachments": [
        Attachment("rapid-review-meeting.ics", CALENDAR.format(method="REQUEST").encode(),
                   "text", "calendar", method="REQUEST"),
        Attachment("form.docx", BINARY, "application", "octet-stream")]},
    "in reply to": {"in_reply_to": "<a.b+c@host.example>"},
    "in reply to an Outlook id": {"in_reply_to": OUTLOOK_ID},
    "auto-replied": {"auto_submitted": "auto-replied"},
    "long key": {"key": "RR-2027-001:agency:hospital-trust-safeguarding-team:meeting:12:x"},
    "non-ascii address": {"to": ["zoë@gp.example"]},
}


def queued(**values: Any) -> bytes:
    """Compose as enqueue_mail does: names and subject on one line, names made safe first."""
    attachments = [replace(attachment, filename=one_line(attachment.filename) or "attachment")
                   for attachment in values.get("attachments", ())]
    return compose_mail(**{**values, "sender_name": display_name(values["sender_name"]),
                           "subject": one_line(values["subject"]), "attachments": attachments})


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def described(raw: bytes) -> dict[str, Any]:
    """Describe a message as a reader sees it: decoded headers, MIME tree, decoded contents."""
    message = parsed(raw)
    names = [name for name in message if not name.lower().startswith(("content-", "mime-"))]
    headers = {name: str(message[name]) for name in names if name != "From"}
    addresses = {name: [found.addr_spec for found in message[name].addresses]
                 for name in ("From", "To", "Cc") if name in message}
    addresses["From name"] = [sender_name(message)]
    parts = []
    for part in message.walk():
        content_type = part["Content-Type"]
        parameters = {key: value for key, value in content_type.params.items()
                      if key != "boundary"}
        disposition = part["Content-Disposition"]
        entry: dict[str, Any] = {
            "type": part.get_content_type(), "parameters": parameters,
            "disposition": part.get_content_disposition(),
            "disposition parameters": dict(disposition.params) if disposition else {},
            "filename": part.get_filename()}
        if not part.is_multipart():
            entry["content"] = (part.get_content() if part.get_content_maintype() == "text"
                                and entry["disposition"] != "attachment"
                                else part.get_payload(decode=True))
        parts.append(entry)
    assert message["MIME-Version"] == "1.0"
    return {"names": names, "headers": headers, "addresses": addresses, "parts": parts}


def sender_name(message: EmailMessage) -> str:
    """Return the From header's display name as RFC 2047 reads it.

    Python's parser keeps the space between two encoded words in a display name (RFC 2047
    section 6.2 says a reader drops it), so a long encoded name is read as RFC 2047 says.
    """
    raw = dict(message.raw_items())["From"]
    if "=?" not in raw:
        return str(message["From"].addresses[0].display_name)
    return str(make_header(decode_header(raw))).rpartition(" <")[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_composer_writes_what_the_email_package_wrote(case: str) -> None:
    # Given a message the bot sends, in one of the ways its mail differs,
    values = {**BASE, **CASES[case]}
    # when it is composed, and built by the email package as before,
    composed = queued(**values)
    reference = email_package_mail(**values)
    # then a reader sees the same headers, the same parts and the same contents.
    assert described(composed) == described(reference)


def assert_lines_fit(composed: bytes) -> None:
    """Assert RFC 5322's line lengths, and RFC 2047's for encoded words."""
    # No line passes 998 octets and none holds a CR,
    assert b"\r" not in composed
    assert all(len(line) <= 998 for line in composed.split(b"\n"))
    # no encoded word passes 75 characters,
    head, _blank, _body = composed.partition(b"\n\n")
    heads = [head, *re.findall(rb"\n--=_[^\n]+\n(.*?)\n\n", composed, re.DOTALL)]
    assert all(len(word) <= 75 for part_head in heads
               for word in re.findall(rb"=\?[^?]*\?[bq]\?[^?]*\?=", part_head))
    # and a header line is over 78 characters only when it holds one word, not an encoded
    # word, that is itself too long to fold (a long file name or word of a subject).
    for part_head in heads:
        for line in part_head.split(b"\n"):
            words = [word for word in line.split(b" ")[0 if line.startswith(b" ") else 1:]
                     if word]
            assert len(line) <= 78 or (len(words) == 1 and not words[0].startswith(b"=?")), line


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_line_fits_and_header_lines_fold_within_78(case: str) -> None:
    # Given a message composed from each case,
    composed = queued(**{**BASE, **CASES[case]})
    # then its lines are as short as RFC 5322 and RFC 2047 ask.
    assert_lines_fit(composed)


def test_a_body_holding_the_boundary_gets_another() -> None:
    # Given the boundary the composer chose for a message with HTML,
    values = {**BASE, "html": "<p>Hello</p>"}
    boundary = parsed(queued(**values)).get_boundary()
    assert boundary is not None
    # when the text of the same message holds that boundary as a line of its own,
    text = f"Quoted:\n--{boundary}\nContent-Type: text/plain\n\ninjected\n--{boundary}--\n"
    message = parsed(queued(**{**values, "text": text}))
    # then another boundary is chosen, and the text and HTML read back as they were.
    assert message.get_boundary() != boundary
    plain, html = message.iter_parts()
    assert plain.get_content() == text
    assert html.get_content() == "<p>Hello</p>\n"


def test_enqueue_mail_stores_what_the_composer_writes(tmp_path: Path) -> None:
    # Given every argument enqueue_mail passes on, with a name, subject and file name that
    # need making safe,
    values = {**BASE, **CASES["meeting and files"], "cc": ["copy@council.example"],
              "sender_name": 'Lee "Duty"\tManager', "subject": "Two\nlines",
              "in_reply_to": OUTLOOK_ID, "auto_submitted": "auto-replied"}
    values["attachments"] = [*values["attachments"], Attachment("a\r\nb.pdf", b"%PDF")]
    database = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    upgrade(database)
    # when it is queued,
    with transaction(database) as session:
        row = enqueue_mail(
            session, partnership="exampleshire", key=values["key"], purpose="reminder",
            sender=values["sender"], sender_name=values["sender_name"], to=values["to"],
            cc=values["cc"], subject=values["subject"], text=values["text"], now=SENT,
            html=values["html"], attachments=values["attachments"],
            in_reply_to=values["in_reply_to"], auto_submitted=values["auto_submitted"])
        payload, message_id = row.payload, row.message_id
    database.dispose()
    # then the row holds the composer's bytes for them, under the row's Message-ID.
    assert payload == queued(**{**values, "message_id": message_id})


def test_a_long_message_id_in_reply_is_written_as_it_is() -> None:
    # Given a reply to an Outlook message, whose Message-ID is longer than a line should be,
    composed = queued(**{**BASE, "in_reply_to": OUTLOOK_ID})
    # then In-Reply-To and References carry the id itself (the email package encoded it as
    # words, which clients that read the raw header do not thread on).
    assert f"\nIn-Reply-To: {OUTLOOK_ID}\n".encode() in composed
    assert f"\nReferences: {OUTLOOK_ID}\n".encode() in composed
    assert b"In-Reply-To: =?utf-8?q?" in email_package_mail(**{**BASE, "in_reply_to": OUTLOOK_ID})


def test_bodies_are_7bit_when_they_can_be_and_quoted_printable_lines_stay_short() -> None:
    # Given ASCII text with a 900-character line and HTML with a character beyond ASCII,
    composed = queued(**{**BASE, "text": "a" * 900 + "\n", "html": "é" * 500})
    message = parsed(composed)
    plain, html = message.iter_parts()
    # then the text goes as 7bit, the HTML as quoted-printable in lines of at most 76.
    assert plain["Content-Transfer-Encoding"] == "7bit"
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    encoded = html.get_payload()
    assert isinstance(encoded, str)
    assert max(len(line) for line in encoded.split("\n")) <= 76
    assert html.get_content() == "é" * 500 + "\n"


def meeting_and_form(message: EmailMessage) -> tuple[EmailMessage, EmailMessage]:
    """Assert a meeting request's structure as Outlook reads it; return the calendar and form.

    The top is mixed, its first part the alternative of text, HTML and the calendar with its
    method (where Outlook looks for it), and then the form as an attachment.
    """
    assert message.get_content_type() == "multipart/mixed"
    alternative, form = message.iter_parts()
    assert isinstance(alternative, EmailMessage) and isinstance(form, EmailMessage)
    assert [part.get_content_type() for part in alternative.iter_parts()] == [
        "text/plain", "text/html", "text/calendar"]
    calendar = list(alternative.iter_parts())[2]
    assert isinstance(calendar, EmailMessage)
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert calendar.get_filename() is None
    assert form.get_content_disposition() == "attachment"
    return calendar, form


def test_the_meeting_goes_inside_the_alternative_and_files_around_it() -> None:
    # Given a meeting request with HTML and a form,
    composed = queued(**{**BASE, **CASES["meeting and files"]})
    # then the calendar is inside the alternative and the form around it, in base64 lines
    # of 76 characters.
    _calendar, form = meeting_and_form(parsed(composed))
    assert form.get_filename() == "form.docx"
    encoded = form.get_payload()
    assert isinstance(encoded, str)
    assert {len(line) for line in encoded.split("\n")[:-2]} == {76}


@pytest.mark.parametrize(("field", "value"), [
    ("subject", "line\nbreak"), ("subject", "carriage\rreturn"), ("subject", "nul\x00"),
    ("subject", "=?utf-8?q?a=0Ab?="), ("subject", "=?utf-8?b?Cg==?= and more"),
    ("subject", "Réunion =?utf-8?q?=0D=0ABcc=3A_e=40e.test?="),
    ("subject", "=?utf-7?q?a+AAo-b?="), ("subject", "=?UTF-8?Q?a=00?="),
    ("sender_name", "Lee\nBcc: e@e.test"), ("sender_name", "=?utf-8?q?Lee=0ABcc:_e@e.test?="),
    ("sender_name", "Zoë\r\n"), ("sender", "rr@exampleshire.example\r\nBcc: e@e.test"),
    ("to", ["a@x.example\r\nBcc: e@e.test"]), ("cc", ["a@x.example", "b@x.example\n"]),
    ("to", ["zoë@x.example\n"]), ("key", "k\n1"), ("message_id", "<a@b>\r\nBcc: e@e.test"),
    ("in_reply_to", "<a@b>\nBcc: e@e.test"), ("auto_submitted", "no\x00"),
    ("attachments", [Attachment("form\n.docx", b"x")]),
    ("attachments", [Attachment("Réunion\r\n.docx", b"x")]),
    ("attachments", [Attachment("=?utf-8?q?form=0A.docx?=", b"x")]),
    ("attachments", [Attachment("x*=utf-8''%0A.pdf", b"x")]),
    ("attachments", [Attachment("x.ics", b"BEGIN", "text", "calendar", "REQ\nUEST")]),
    ("attachments", [Attachment("x.pdf", b"x", "application", "pdf\r\nBcc: e@e.test")]),
])
def test_a_line_break_anywhere_in_a_header_is_refused(field: str, value: Any) -> None:
    # Given a value holding a CR, LF or NUL, raw or in an encoded form a reader decodes,
    values = {**BASE, field: value}
    # when the message is composed (the names and subject not made safe first),
    # then it is refused rather than written.
    with pytest.raises(UnsafeHeader):
        compose_mail(**values)


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "X\nY", "", "Zoë"])
def test_a_header_name_outside_rfc_5322_is_refused(name: str) -> None:
    with pytest.raises(UnsafeHeader):
        header_field(name, "value")


def test_a_structured_value_that_cannot_fit_a_line_is_refused() -> None:
    # Given a Message-ID longer than a line may be, or one that is not ASCII,
    # then the header is refused, never written over 998 octets or as raw UTF-8.
    with pytest.raises(UnsafeHeader):
        header_field("Message-ID", f"<{'k' * 990}@x.example>")
    with pytest.raises(UnsafeHeader):
        header_field("Message-ID", "<clé@x.example>")


def test_a_long_or_accented_key_and_an_overlong_id_replied_to_do_not_stop_the_message() -> None:
    # Given a key made from a bounce's recipient, long and beyond ASCII, and a reply to an id
    # of 990 characters (RFC 5322 allows it, but not on the In-Reply-To line),
    key = f"bounce:7:zoë.{'x' * 1000}@gp.example"
    long_id = f"<{'a' * 976}@b.example>"
    composed = queued(**{**BASE, "key": key, "in_reply_to": long_id})
    # then the message is composed, the key reads back as it was, the id is left off,
    message = parsed(composed)
    assert str(message["X-RRBot-Key"]) == key
    assert "In-Reply-To" not in message and "References" not in message
    # and its lines fit.
    assert_lines_fit(composed)


ADDRESSES = st.from_regex(r"[a-z][a-z0-9.+_-]{0,20}@[a-z][a-z0-9-]{0,15}\.example",
                          fullmatch=True)
# Text from every plane, spaces weighted up so words form, and no surrogates.
WORDS = st.text(st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(" é-_=?")),
                max_size=160)
BODIES = st.lists(st.one_of(st.text(st.characters(exclude_categories=["Cs"]), max_size=90),
                            st.sampled_from(["\n", "\r\n", "\r", " ", ".", "From ", "--=_"])),
                  max_size=30).map("".join)
FILES = st.builds(Attachment, WORDS, st.binary(max_size=300))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=WORDS, sender_name=WORDS, to=st.lists(ADDRESSES, max_size=4),
       cc=st.lists(ADDRESSES, max_size=3), text=BODIES, html=st.none() | BODIES,
       attachments=st.lists(FILES, max_size=3),
       in_reply_to=st.none() | st.just(OUTLOOK_ID))
def test_any_message_reads_as_the_email_package_wrote_it(**generated: Any) -> None:
    # Given any subject, name, addressees, bodies and files,
    values = {**BASE, **generated}
    try:
        reference = email_package_mail(**values)
    except UnsafeHeader:
        # (a value the email package also refused is refused by the composer too)
        with pytest.raises(UnsafeHeader):
            queued(**values)
        return
    # when the composer writes the message,
    composed = queued(**values)
    # then a reader sees the same as in the email package's message, and the subject and
    # name are exactly those given, made safe (the email package sometimes drops a space
    # between a name's encoded words, so the name is compared with what was given only).
    described_message, described_reference = described(composed), described(reference)
    assert (described_message["addresses"].pop("From name")
            == [display_name(values["sender_name"])])
    described_reference["addresses"].pop("From name")
    assert described_message == described_reference
    assert described_message["headers"]["Subject"] == one_line(values["subject"])
    assert_lines_fit(composed)
