"""Hostile input for the corpus: look-alikes, several Froms, injection, huge headers, MIME.

Each is handled in bounded time, and nothing an attacker writes reaches a header the bot sends.
"""

from __future__ import annotations

from tests.corpus.make_corpus import DOCX, FULL_FORM, Spec, docx_form, mail, person, trace

GP = "gp.example"
TO = "To: Rapid Review <rapidreview@exampleshire.example>\r\n"
REFERRAL = dict(status="processed", kind="referral", case="RR-2026-003",
                queued=["referral_ack", "referral_copy"])
# A referral with no form attached is acknowledged and its referrer asked for the form.
BARE = dict(REFERRAL, queued=["referral_ack", "referral_copy", "incomplete_referral"])
UNVERIFIED = dict(status="quarantined", kind="unverified_sender")
ONE_ADDRESS = dict(UNVERIFIED, reason="exactly one address")


def raw(headers: str, body: str = "Referral for a serious incident.\r\n",
        prefix: str | None = None, content_type: str = "text/plain; charset=utf-8") -> bytes:
    """Write a message byte by byte (for what the email library would not write)."""
    return ((trace(GP) if prefix is None else prefix) + headers + TO
            + f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n" + body).encode()


def from_line(value: str, number: str, subject: str = "Serious incident referral") -> str:
    """Return a From header and the usual others."""
    return f"From: {value}\r\nSubject: {subject}\r\nMessage-ID: <in{number}@mail.gp.example>\r\n"


def with_form(headers: str) -> bytes:
    """Build a referral with its form, whose headers are written raw."""
    form = docx_form(**FULL_FORM)
    built = mail([("Subject", "x")], "Please find attached a referral.",
                 files=[("Referral form.docx", form, "application", DOCX)])
    body = built.split(b"\n\n", 1)[1] if b"\r\n\r\n" not in built else built.split(
        b"\r\n\r\n", 1)[1]
    boundary = built.split(b'boundary="', 1)[1].split(b'"', 1)[0].decode()
    return (trace(GP) + headers + TO + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;"
            f' boundary="{boundary}"\r\n\r\n').encode() + body


def input_specs() -> list[Spec]:
    """Every hostile-input corpus message with its expected outcome."""
    found: list[Spec] = []

    def add(name: str, message: bytes, **expect: object) -> None:
        found.append(Spec(name, message, dict(expect)))

    lee = "lee.safeguarding@gp.example"
    # Look-alikes: never a configured contact.
    add("lookalike_digit_domain.eml", raw(from_line("Dr Lee <lee.safeguarding@gp-examp1e.example>",
                                                    "1"), prefix=trace("gp-examp1e.example")),
        **UNVERIFIED, reason="not a configured contact")
    add("lookalike_cyrillic_local_part.eml", raw(from_line(
        "Dr Lee <l\u0435e.safeguarding@gp.example>", "2")), **UNVERIFIED)
    add("lookalike_fullwidth_at.eml", raw(from_line("Dr Lee <lee.safeguarding\uff20gp.example>",
                                                    "3")), **UNVERIFIED)
    add("lookalike_idn_punycode_subdomain.eml", raw(from_line(
        "Dr Lee <lee.safeguarding@xn--gp-example-9kb.test>", "4"),
        prefix=trace("xn--gp-example-9kb.test")), **UNVERIFIED, reason="not a configured contact")
    add("lookalike_encoded_display_address.eml", raw(from_line(
        "=?utf-8?q?lee.safeguarding=40gp.example?= <attacker@evil.test>", "5"),
        prefix=trace("evil.test")), **UNVERIFIED)
    add("lookalike_trailing_domain.eml", raw(from_line(
        "Dr Lee <lee.safeguarding@gp.example.evil.test>", "6"),
        prefix=trace("gp.example.evil.test")), **UNVERIFIED, reason="not a configured contact")
    # Several senders, or a sender hidden in a comment or group: no single sender.
    add("from_two_header_lines.eml", raw(from_line(f"Dr Lee <{lee}>", "7")
                                         + "From: Evil <evil@evil.test>\r\n"), **ONE_ADDRESS)
    add("from_group_syntax.eml", raw(from_line(f"Partners: {lee}, evil@evil.test;", "8")),
        **ONE_ADDRESS)
    add("from_address_in_comment.eml", raw(from_line(f"attacker@evil.test ({lee})", "9"),
                                           prefix=trace("evil.test")), **ONE_ADDRESS)
    add("from_second_address_in_quotes.eml", raw(from_line(
        f'"{lee}" <attacker@evil.test>', "10"), prefix=trace("evil.test")), **ONE_ADDRESS)
    add("sender_header_other_domain.eml", raw(
        from_line(f"Dr Lee <{lee}>", "11") + "Sender: attacker@evil.test\r\n",
        prefix=trace("evil.test")), **UNVERIFIED, reason="did not authenticate")
    add("from_empty.eml", raw("From: \r\nSubject: Referral\r\nMessage-ID: <in12@x.test>\r\n"),
        **ONE_ADDRESS)
    # Header injection: line breaks through raw bytes, encoded words (Q and B) and RFC 2231.
    add("inject_message_id_q_word.eml", with_form(
        from_line(f"Dr Lee <{lee}>", "13").replace(
            "<in13@mail.gp.example>", "<=?utf-8?q?x=0D=0ABcc=3A_evil=40evil.test?=@gp.example>")),
        **REFERRAL)
    add("inject_message_id_b_word.eml", with_form(
        from_line(f"Dr Lee <{lee}>", "14").replace(
            "<in14@mail.gp.example>", "=?utf-8?b?PGFAYj4NCkJjYzogZXZpbEBldmlsLnRlc3Q=?=")),
        **REFERRAL)
    add("inject_message_id_bare_cr.eml", with_form(
        from_line(f"Dr Lee <{lee}>", "15").replace(
            "<in15@mail.gp.example>", "<in15@gp.example>\rBcc: evil@evil.test")), **REFERRAL)
    add("inject_display_name_q_word.eml", with_form(from_line(
        f"=?utf-8?q?Dr_Lee=0D=0ABcc=3A_evil=40evil.test?= <{lee}>", "16")),
        status="quarantined", kind="limits", reason="From header cannot be decoded")
    add("inject_subject_b_word.eml", with_form(from_line(
        f"Dr Lee <{lee}>", "17",
        "=?utf-8?b?UmVmZXJyYWwNCkJjYzogZXZpbEBldmlsLnRlc3Q=?=")), **REFERRAL)
    for number, disposition in (
            ("18", "attachment; filename*=utf-8''form%0D%0ABcc%3A%20evil%40evil.test.docx"),
            ("19", 'attachment; filename="=?utf-8?q?form=0D=0ABcc=3A_evil=40evil.test?=.docx"'),
            ("20", "attachment; filename*=utf-8''referral%00form.docx")):
        add(f"inject_filename_{number}.eml", with_form(from_line(f"Dr Lee <{lee}>", number))
            .replace(b'attachment; filename="Referral form.docx"', disposition.encode()),
            **REFERRAL)
    add("inject_in_reply_to_q_word.eml", with_form(
        from_line(f"Dr Lee <{lee}>", "21") + "In-Reply-To: =?utf-8?q?=0D=0ABcc=3A_x=40x.test?=\r\n"
        "References: <=?utf-8?q?=0D=0ABcc=3A_x?=@x.test>\r\n"), **REFERRAL)
    # Huge headers and names: refused before any pattern runs.
    limits = dict(status="quarantined", kind="limits")
    add("huge_header_line.eml", raw(from_line(f"Dr Lee <{lee}>", "22")
                                    + "X-Filler: " + "a" * 100_000 + "\r\n"),
        **limits, reason="RFC 5322")
    add("huge_header_section.eml", raw(from_line(f"Dr Lee <{lee}>", "23") + "".join(
        f"X-Filler-{n}: {'a' * 900}\r\n" for n in range(1100))), **limits, reason="headers are")
    add("huge_display_name_folded.eml", raw(from_line(
        "\r\n ".join(["D" * 900] * 112) + f" <{lee}>", "24")), **limits, reason="From header")
    add("huge_display_name_one_line.eml", raw(from_line("D" * 100_000 + f" <{lee}>", "25")),
        **limits, reason="RFC 5322")
    add("long_display_name.eml", raw(from_line("D" * 400 + f" <{lee}>", "26")),
        **limits, reason="display name")
    add("long_address.eml", raw(from_line("Dr Lee <" + "l" * 300 + "@gp.example>", "27")),
        **limits, reason="From address")
    add("huge_cc.eml", raw(from_line(f"Dr Lee <{lee}>", "28") + "Cc: " + ",\r\n ".join(
        f"person{n}@gp.example" for n in range(600)) + "\r\n"), **limits, reason="Cc header")
    add("huge_references.eml", raw(from_line(f"Dr Lee <{lee}>", "29") + "References: "
                                   + "\r\n ".join(f"<r{n}@gp.example>" for n in range(900))
                                   + "\r\n"), **limits, reason="References header")
    nbsp_forward = (
        "Forwarding for the bot.\r\n\r\nFrom:" + "\u00a0" * 3000
        + " Avery Housing <avery.housing@homes.example>\r\nSubject: Referral\r\n")
    add("nbsp_forwarded_referral.eml", mail(person(
        "Sam Example", "sam.example@exampleshire.example", "FW: Referral for Rapid Review",
        "<nb1@exampleshire.example>"), nbsp_forward, prefix=trace("exampleshire.example")),
        **BARE, referrer="avery.housing@homes.example")
    add("html_many_open_angles.eml", raw(from_line(f"Dr Lee <{lee}>", "30"),
                                         "<p>Referral</p>" + "<" * 500_000,
                                         content_type="text/html; charset=utf-8"), **BARE)
    add("html_unclosed_scripts.eml", raw(from_line(f"Dr Lee <{lee}>", "31"),
                                         "<p>Referral</p>" + "<script>" * 100_000,
                                         content_type="text/html; charset=utf-8"), **BARE)
    add("body_long_word_without_at.eml", raw(from_line(f"Dr Lee <{lee}>", "32"),
                                             "Referral. " + "a" * 1_000_000), **BARE)
    # Nested messages: a forward of a forward of a forward... past the depth limit.
    inner = "Content-Type: text/plain\r\n\r\nhello\r\n"
    for _ in range(25):
        inner = f"Content-Type: message/rfc822\r\n\r\nSubject: fwd\r\n{inner}"
    add("mime_nested_messages.eml", raw(from_line(f"Dr Lee <{lee}>", "33"),
                                        inner.split("\r\n\r\n", 1)[1],
                                        content_type="message/rfc822"),
        **limits, reason="nested more than 20")
    add("own_mail_wrong_tag.eml", raw(
        "From: Someone <someone@relay.test>\r\nSubject: Fwd\r\nMessage-ID: <rr."
        + "0" * 16 + "f" * 16 + "@exampleshire.example>\r\n", prefix=""), **UNVERIFIED)
    return found
