"""Write the inbound corpus (.eml files) and its manifest; run once, the output is checked in.

Usage: .venv/bin/python -m tests.corpus.make_corpus
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.handlers.world import request_message_id

HERE = Path(__file__).resolve().parent
BOUNDARY = "mx.exampleshire.example"
OUR_DOMAIN = "exampleshire.example"
GP_REQUEST = request_message_id("RR-2026-001", "gp")
HOSPITAL_REQUEST = request_message_id("RR-2026-001", "hospital")
HOUSING_REQUEST = request_message_id("RR-2026-001", "housing")
# The name of the fictional child in every referral; tests check it never leaks.
CHILD_NAME = "Jessamy Quintrell"
CHILD_DOB = "14/07/2019"


@dataclass
class Spec:
    """One corpus message: its file name, its bytes and what the pipeline must make of it."""

    name: str
    raw: bytes
    expect: dict[str, Any] = field(default_factory=dict)


def auth(domain: str, verdict: str = "dmarc=pass") -> str:
    """Return the boundary's Authentication-Results header line for a sender domain."""
    passed = "pass" if verdict == "dmarc=pass" else "fail"
    dkim = "pass" if passed == "pass" else "none"
    return (f"Authentication-Results: {BOUNDARY};\r\n\tspf={passed} smtp.mailfrom={domain};"
            f"\r\n\tdkim={dkim} header.d={domain};\r\n\t{verdict} header.from={domain}\r\n")


def received(by: str, source: str) -> str:
    """Return a Received header line."""
    return (f"Received: from {source} ({source} [192.0.2.10])\r\n\tby {by} with ESMTPS;"
            " Thu, 5 Mar 2026 09:58:00 +0000\r\n")


def trace(domain: str, verdict: str = "dmarc=pass") -> str:
    """Return the headers our boundary adds on the way in: its results, then its Received."""
    return auth(domain, verdict) + received(BOUNDARY, f"mail.{domain}")


def docx_form(**values: str) -> bytes:
    """Build a referral form (.docx) with python-docx, the way the seed forms lay it out."""
    from docx import Document as WordDocument

    labels = [
        ("Name of Child", "child_name"), ("Date of Birth", "child_dob"),
        ("Home address", "address"), ("Date of critical incident", "incident_date"),
        ("Agencies known to be involved", "agencies_involved"),
        ("Reason for referral", "reason"), ("Referrer name", "referrer_name"),
        ("Agency", "referrer_agency"),
    ]
    document = WordDocument()
    document.add_heading("Referral for a Child Safeguarding Practice Review", level=1)
    document.add_paragraph("Please complete every section.")
    table = document.add_table(rows=0, cols=2)
    for label, key in labels:
        cells = table.add_row().cells
        cells[0].text = f"{label}:"
        cells[1].text = values.get(key, "")
    for number in range(int(values.get("padding", "0"))):
        document.add_paragraph(f"Chronology entry {number}: contact recorded by the practitioner "
                               "with the family at home; no concerns noted at the time. " * 3)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


FULL_FORM = {
    "child_name": CHILD_NAME, "child_dob": CHILD_DOB, "address": "1 Example Row, Exampletown",
    "incident_date": "01/03/2026",
    "agencies_involved": "Exampleshire GP Federation; Exampleshire Homes; health visitor",
    "reason": "Serious injury to a child under two; neglect suspected.",
    "referrer_name": "Dr Lee Safeguarding", "referrer_agency": "Exampleshire GP Federation",
}
DOCX = "vnd.openxmlformats-officedocument.wordprocessingml.document"


def mail(
    headers: list[tuple[str, str]], text: str, *, prefix: str = "", html: str | None = None,
    files: list[tuple[str, bytes, str, str]] = (),  # type: ignore[assignment]
) -> bytes:
    """Build a message with the email library, then put the trace headers on top."""
    message = EmailMessage(policy=policy.SMTP)
    for name, value in headers:
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content, maintype, subtype in files:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return prefix.encode() + message.as_bytes()


def person(name: str, address: str, subject: str, message_id: str, *,
           in_reply_to: str | None = None, extra: list[tuple[str, str]] = ()
           ) -> list[tuple[str, str]]:  # type: ignore[assignment]
    """Return the usual headers of a person's email to the partnership mailbox."""
    headers = [("From", f"{name} <{address}>"), ("To", "Rapid Review <rapidreview@"
               f"{OUR_DOMAIN}>"), ("Subject", subject), ("Date", "Thu, 05 Mar 2026 09:57:00 +0000"),
               ("Message-ID", message_id), ("MIME-Version", "1.0")]
    if in_reply_to:
        headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
    return headers + list(extra)


OUTLOOK_QUOTE = ("\r\n\r\n________________________________\r\nFrom: Rapid Review "
                 "<rapidreview@exampleshire.example>\r\nSent: 03 March 2026 10:00\r\nTo: {to}\r\n"
                 "Subject: [RR-2026-001] Information request\r\n\r\nPlease reply by Day 7 "
                 "with your single agency summary, or tell us you have no involvement.\r\n")
GMAIL_QUOTE = ("\n\nOn Tue, 3 Mar 2026 at 10:00, Rapid Review <rapidreview@exampleshire.example> "
               "wrote:\n> Please reply by Day 7 with your single agency summary.\n> Do you need "
               "more time? Tell us.\n")


def specs() -> list[Spec]:
    """Every corpus message with its expected outcome."""
    form = docx_form(**FULL_FORM)
    partial = docx_form(child_name=CHILD_NAME, address="1 Example Row",
                        agencies_involved="Exampleshire Hospitals NHS Trust")
    chronology = b"PK\x03\x04 spreadsheet bytes for the test"
    pdf = b"%PDF-1.4\n% a single agency summary\n%%EOF\n"
    gp, hospital, housing = "gp.example", "hospital.example", "homes.example"
    found: list[Spec] = []

    def add(name: str, raw: bytes, **expect: Any) -> None:
        found.append(Spec(name, raw, expect))

    # Referrals: a new case each, acknowledged and copied to the partners.
    add("referral_docx_gp.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "Serious incident referral", "<CAref1@mail.gp.example>"),
        "Please find attached a referral for consideration of a Rapid Review.\r\n\r\nDr Lee",
        prefix=trace(gp), files=[("Referral form.docx", form, "application", DOCX)]),
        status="processed", kind="referral", case="RR-2026-003",
        queued=["referral_ack", "referral_copy"], named_agencies=["gp", "housing"],
        child=True)
    add("referral_docx_incomplete.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "Referral - notification of serious incident", "<ref2@hospital.example>"),
        "Referral attached; some details to follow.", prefix=trace(hospital),
        files=[("Notification.docx", partial, "application", DOCX)]),
        status="processed", kind="referral", case="RR-2026-003",
        queued=["referral_ack", "referral_copy", "incomplete_referral"],
        named_agencies=["hospital"])
    add("referral_body_police.eml", mail(
        person("Chris Superintendent", "chris.superintendent@police.example",
               "Notification of a serious incident", "<pol-1@police.example>"),
        f"Name of child: {CHILD_NAME}\r\nDate of birth: {CHILD_DOB}\r\nHome address: 1 Example "
        "Row\r\nDate of incident: 02/03/2026\r\nAgencies involved: GP, housing\r\nReason for "
        "referral: head injury, account inconsistent.\r\n", prefix=trace("police.example")),
        status="processed", kind="referral", case="RR-2026-003",
        queued=["referral_ack", "referral_copy"], named_agencies=["gp", "housing"], child=True)
    add("referral_forwarded_by_manager.eml", mail(
        person("Sam Example", "sam.example@exampleshire.example", "FW: Referral for Rapid Review",
               "<AM0PR01MB1@eurprd01.prod.exchangelabs.com>"),
        "Forwarding for the bot.\r\n\r\n________________________________\r\nFrom: Avery Housing "
        "<avery.housing@homes.example>\r\nSent: 04 March 2026 16:40\r\nTo: Sam Example\r\n"
        "Subject: Referral for Rapid Review\r\n\r\nReferral attached.\r\n",
        prefix=trace(OUR_DOMAIN), files=[("Referral form.docx", form, "application", DOCX)]),
        status="processed", kind="referral", case="RR-2026-003",
        referrer="avery.housing@homes.example", queued=["referral_ack", "referral_copy"])
    add("referral_pdf_hospital_domain.eml", mail(
        person("Ward Sister", "ward.sister@hospital.example", "Rapid review referral",
               "<CAJx9@mail.gmail.com>"),
        "Referral form attached as PDF.", html="<div dir=\"ltr\">Referral form attached as "
        "PDF.</div>", prefix=trace(hospital),
        files=[("Referral.pdf", pdf, "application", "pdf")]),
        status="processed", kind="referral", case="RR-2026-003",
        queued=["referral_ack", "referral_copy", "incomplete_referral"])
    add("referral_unknown_sender.eml", mail(
        person("A Member of Public", "someone@freemail.test", "Referral about a child",
               "<x1@freemail.test>"), "I want to refer a child.", prefix=trace("freemail.test")),
        status="quarantined", kind="unverified_sender", reason="not a configured contact")
    add("referral_lookalike_domain.eml", mail(
        person("Robin Named Nurse", "robin.nurse@paddington-hospital.example",
               "Serious incident referral", "<la1@paddington-hospital.example>"),
        "Referral attached.", prefix=trace("paddington-hospital.example"),
        files=[("Referral form.docx", form, "application", DOCX)]),
        status="quarantined", kind="unverified_sender", reason="not a configured contact")
    add("referral_subdomain_lookalike.eml", mail(
        person("Dr Lee", "lee.safeguarding@gp.example.attacker.test", "Referral",
               "<la2@attacker.test>"), "Referral.", prefix=trace("gp.example.attacker.test")),
        status="quarantined", kind="unverified_sender", reason="not a configured contact")
    add("referral_punycode_lookalike.eml", mail(
        person("Dr Lee", "lee.safeguarding@xn--gp-3ed.example", "Referral",
               "<la3@xn--gp-3ed.example>"), "Referral.", prefix=trace("xn--gp-3ed.example")),
        status="quarantined", kind="unverified_sender", reason="not a configured contact")
    confusable = (trace(gp) + "From: Dr Lee <lee.safeguarding@gр.example>\r\nTo: rapidreview@"
                  "exampleshire.example\r\nSubject: Referral\r\nMessage-ID: <la4@x.test>\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "Referral.\r\n").encode("utf-8")
    add("referral_unicode_confusable.eml", confusable, status="quarantined",
        kind="unverified_sender")
    add("spoof_dmarc_fail.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Serious incident referral",
               "<sp1@evil.test>"), "Referral.", prefix=trace(gp, "dmarc=fail")),
        status="quarantined", kind="unverified_sender", reason="did not authenticate")
    forged = (auth(gp, "dmarc=none") + received(BOUNDARY, "relay.evil.test")
              + received("relay.evil.test", "laptop") + auth(gp, "dmarc=pass"))
    add("spoof_forged_results_below.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Serious incident referral",
               "<sp2@evil.test>"), "Referral.", prefix=forged),
        status="quarantined", kind="unverified_sender", reason="did not authenticate")
    only_forged = (received(BOUNDARY, "relay.evil.test") + received("relay.evil.test", "x")
                   + auth(gp, "dmarc=pass"))
    add("spoof_only_forged_results.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Serious incident referral",
               "<sp3@evil.test>"), "Referral.", prefix=only_forged),
        status="quarantined", kind="unverified_sender", reason="from outside ignored")
    add("spoof_header_from_mismatch.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Serious incident referral",
               "<sp4@evil.test>"), "Referral.",
        prefix=(f"Authentication-Results: {BOUNDARY}; dmarc=pass header.from=evil.test\r\n"
                + received(BOUNDARY, "mail.evil.test"))),
        status="quarantined", kind="unverified_sender")
    add("spoof_display_name.eml", mail(
        person("lee.safeguarding@gp.example", "attacker@evil.test", "Serious incident referral",
               "<sp5@evil.test>"), "Referral.", prefix=trace("evil.test")),
        status="quarantined", kind="unverified_sender", reason="exactly one address")
    add("no_authentication_results.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "RE: [RR-2026-001]",
               "<na1@mail.gp.example>"), "No records held.",
        prefix=received(BOUNDARY, "mail.gp.example")),
        status="quarantined", kind="unverified_sender", reason="no authentication results")

    # Agency replies on case 1 (gp, hospital and housing were asked).
    add("outlook_return_docx_gp.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "RE: [RR-2026-001] Information request", "<DB7PR01MB5@eurprd01.prod.outlook.com>",
               in_reply_to=GP_REQUEST,
               extra=[("Thread-Topic", "[RR-2026-001] Information request"),
                      ("X-MS-Has-Attach", "yes")]),
        "Hi,\r\n\r\nPlease find our single agency summary attached.\r\n\r\nLee"
        + OUTLOOK_QUOTE.format(to="Dr Lee Safeguarding"), prefix=trace(gp),
        files=[("GP single agency summary.docx", partial, "application", DOCX)]),
        status="processed", kind="agency_return", case="RR-2026-001", agency="gp",
        request_status="returned", queued=["agency_receipt"], documents=1)
    add("gmail_no_involvement_hospital.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "Re: [RR-2026-001] Information request", "<CAHosp1@mail.gmail.com>",
               in_reply_to=HOSPITAL_REQUEST),
        "Hello,\n\nThis child is not known to us and we hold no records.\n\nRobin" + GMAIL_QUOTE,
        prefix=trace(hospital)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="hospital",
        request_status="no_involvement", queued=["agency_receipt"])
    add("housing_extension_request.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "RE: [RR-2026-001] Information request", "<hx1@homes.example>",
               in_reply_to=HOUSING_REQUEST),
        "Our records officer is off this week. Could we have an extension until next "
        "Wednesday please?" + OUTLOOK_QUOTE.format(to="Avery Housing"), prefix=trace(housing)),
        status="processed", kind="agency_extension_request", case="RR-2026-001",
        agency="housing", request_status="open", queued=["agency_flag"])
    add("hospital_question.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "RE: [RR-2026-001] Information request", "<hq1@hospital.example>",
               in_reply_to=HOSPITAL_REQUEST),
        "Do you want the maternity records as well as the ED attendances?"
        + OUTLOOK_QUOTE.format(to="Robin"), prefix=trace(hospital)),
        status="processed", kind="agency_question", case="RR-2026-001", agency="hospital",
        request_status="open", queued=["agency_flag"])
    add("german_aw_subject_only.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "AW: [RR-2026-001] Information request", "<aw1@mail.gp.example>"),
        "Keine Unterlagen. No records held for this family.", prefix=trace(gp)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="gp",
        request_status="no_involvement")
    add("swedish_sv_prefix.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "SV: SV: [RR-2026-001] Information request", "<sv1@homes.example>"),
        "Nil return from Exampleshire Homes.", prefix=trace(housing)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="housing")
    add("dutch_antw_prefix.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "Antw: [RR-2026-001] Information request", "<an1@hospital.example>"),
        "Please find the summary attached.", prefix=trace(hospital),
        files=[("summary.pdf", pdf, "application", "pdf")]),
        status="processed", kind="agency_return", case="RR-2026-001", agency="hospital",
        request_status="returned", documents=1)
    add("helpdesk_tag_human_reply.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "[Ticket#123] RE: [RR-2026-001] Information request", "<tk1@homes.example>"),
        "We have checked our systems: no trace of the family.", prefix=trace(housing)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="housing")
    add("sr_tag_fw_re_chain.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "[SR-55] FW: RE: FW: [RR-2026-001] Information request", "<sr1@hospital.example>"),
        "Who should the chronology go to - you or the chair?", prefix=trace(hospital)),
        status="processed", kind="agency_question", case="RR-2026-001", agency="hospital")
    add("agency_fallback_no_tag.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Information as requested",
               "<fb1@mail.gp.example>"), "Attached.", prefix=trace(gp),
        files=[("GP chronology.xlsx", chronology, "application",
                "vnd.openxmlformats-officedocument.spreadsheetml.sheet")]),
        status="processed", kind="agency_return", case="RR-2026-001", agency="gp",
        request_status="returned")
    add("ambiguous_agency_no_tag.eml", mail(
        person("Avery Housing", "avery.housing@homes.example", "Our return",
               "<am1@homes.example>"), "No involvement.", prefix=trace(housing)),
        status="quarantined", kind="agency_reply", reason="names no case")
    add("reply_on_case_not_asked.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "RE: [RR-2026-002] Information request", "<na2@mail.gp.example>"),
        "Not known to us.", prefix=trace(gp)),
        status="quarantined", kind="agency_reply", case="RR-2026-002", reason="has not asked")
    add("disallowed_attachment.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "RE: [RR-2026-001] Information request", "<ex1@mail.gp.example>",
               in_reply_to=GP_REQUEST), "Records attached.", prefix=trace(gp),
        files=[("records.zip", b"PK\x03\x04zip", "application", "zip")]),
        status="quarantined", kind="agency_reply", case="RR-2026-001", reason=".zip")
    signature = b"\x89PNG\r\n\x1a\n signature"
    inline_sig = mail(
        person("Avery Housing", "avery.housing@homes.example",
               "RE: [RR-2026-001] Information request", "<sig1@homes.example>",
               in_reply_to=HOUSING_REQUEST), "Chronology attached.", prefix=trace(housing),
        html="<p>Chronology attached.</p><img src=\"cid:sig\">",
        files=[("chronology.xlsx", chronology, "application",
                "vnd.openxmlformats-officedocument.spreadsheetml.sheet")])
    add("return_xlsx_with_signature.eml", _with_inline_image(inline_sig, signature),
        status="processed", kind="agency_return", case="RR-2026-001", agency="housing",
        request_status="returned", documents=1)
    add("nil_return_housing.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "RE: [RR-2026-001] Information request", "<nil1@homes.example>",
               in_reply_to=HOUSING_REQUEST), "NIL RETURN", prefix=trace(housing)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="housing")
    add("unknown_tag_agency_fallback.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "RE: [RR-2026-099] records", "<unk1@mail.gp.example>"),
        "Nothing known to this practice - no records.", prefix=trace(gp)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="gp")
    html_only = mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "RE: [RR-2026-001] Information request", "<ho1@hospital.example>",
               in_reply_to=HOSPITAL_REQUEST), "placeholder", prefix=trace(hospital))
    html_only = html_only.replace(b"text/plain", b"text/html", 1).replace(
        b"placeholder", b"<html><body><p>No&nbsp;involvement with this family.</p>"
        b"<div>From: Rapid Review<br>Sent: 03 March 2026</div></body></html>", 1)
    add("html_only_outlook_reply.eml", html_only,
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="hospital")
    add("auto_submitted_no_is_human.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "RE: [RR-2026-001] Information request", "<asn1@mail.gp.example>",
               in_reply_to=GP_REQUEST, extra=[("Auto-Submitted", "no")]),
        "We have no involvement with this child.", prefix=trace(gp)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="gp")
    add("spf_dkim_aligned_without_dmarc.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "RE: [RR-2026-001] Information request", "<al1@homes.example>",
               in_reply_to=HOUSING_REQUEST), "No records.",
        prefix=(f"Authentication-Results: {BOUNDARY}; spf=pass smtp.mailfrom=bounces."
                f"{housing}; dkim=pass header.d={housing}\r\n"
                + received(BOUNDARY, "mail.homes.example"))),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="housing")
    add("spf_pass_dkim_unaligned.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "RE: [RR-2026-001] Information request", "<al2@homes.example>",
               in_reply_to=HOUSING_REQUEST), "No records.",
        prefix=(f"Authentication-Results: {BOUNDARY}; spf=pass smtp.mailfrom={housing}; "
                "dkim=pass header.d=bulkmailer.test\r\n" + received(BOUNDARY, "mail.x.test"))),
        status="quarantined", kind="unverified_sender")

    # Auto-replies and list mail: noted where useful, never answered.
    add("outlook_out_of_office_gp.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
               "Automatic reply: [RR-2026-001] Information request", "<oof1@mail.gp.example>",
               in_reply_to=GP_REQUEST, extra=[("Auto-Submitted", "auto-replied"),
                                              ("X-Auto-Response-Suppress", "All"),
                                              ("X-MS-Exchange-Inbox-Rules-Loop", "x")]),
        "I am out of the office until 16 March with limited access to email.", prefix=trace(gp)),
        status="processed", kind="out_of_office", agency="gp", contact_problem="out_of_office",
        queued=["agency_reminder"])
    add("gmail_vacation_hospital.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "Re: [RR-2026-001] Information request", "<vac1@mail.gmail.com>",
               extra=[("Auto-Submitted", "auto-replied"), ("Precedence", "bulk")]),
        "Thanks for your email. I'm on annual leave and back on Monday.",
        prefix=trace(hospital)),
        status="processed", kind="list_mail")
    add("gmail_vacation_no_precedence.eml", mail(
        person("Robin Named Nurse", "robin.nurse@hospital.example",
               "Re: [RR-2026-001] Information request", "<vac2@mail.gmail.com>",
               extra=[("Auto-Submitted", "auto-replied")]),
        "Thanks for your email. I'm on annual leave and back on Monday.",
        prefix=trace(hospital)),
        status="processed", kind="out_of_office", agency="hospital",
        contact_problem="out_of_office", queued=["agency_reminder"])
    add("german_abwesenheitsnotiz.eml", mail(
        person("Avery Housing", "avery.housing@homes.example",
               "Abwesenheitsnotiz: [RR-2026-001] Information request", "<de1@homes.example>",
               extra=[("X-Autoreply", "yes")]),
        "Ich bin bis zum 16.03. nicht im Büro.", prefix=trace(housing)),
        status="processed", kind="out_of_office", agency="housing",
        contact_problem="out_of_office")
    add("french_reponse_automatique.eml", mail(
        person("Jamie Education", "jamie.education@exampleshire.example",
               "Réponse automatique : [RR-2026-001] Information request", "<fr1@ex.example>"),
        "Je suis absent du bureau.", prefix=trace(OUR_DOMAIN)),
        status="processed", kind="out_of_office")
    add("out_of_office_unknown_sender.eml", mail(
        person("Someone", "someone@elsewhere.test", "Out of Office: your message",
               "<oof2@elsewhere.test>", extra=[("Auto-Submitted", "auto-replied")]),
        "I am away.", prefix=trace("elsewhere.test")),
        status="processed", kind="out_of_office")
    add("list_mail_list_id.eml", mail(
        person("Safeguarding News", "news@lists.safeguarding.test", "Weekly safeguarding digest",
               "<ln1@lists.safeguarding.test>",
               extra=[("List-Id", "<safeguarding-news.lists.safeguarding.test>"),
                      ("List-Unsubscribe", "<mailto:leave@lists.safeguarding.test>")]),
        "This week: referral thresholds explained.", prefix=trace("lists.safeguarding.test")),
        status="processed", kind="list_mail")
    add("bulk_newsletter.eml", mail(
        person("Training Team", "training@gp.example", "Training dates for referrals",
               "<bk1@gp.example>", extra=[("Precedence", "bulk")]),
        "New referral training dates.", prefix=trace(gp)),
        status="processed", kind="list_mail")
    add("x_autorespond_generic.eml", mail(
        person("Dr Morgan Senior", "morgan.senior@gp.example", "Re: escalation",
               "<ar1@gp.example>", extra=[("X-Autorespond", "yes")]),
        "Your message has been received.", prefix=trace(gp)),
        status="processed", kind="auto_reply")
    add("auto_generated_notice.eml", mail(
        person("Records System", "noreply@hospital.example", "Notification: document viewed",
               "<ag1@hospital.example>", extra=[("Auto-Submitted", "auto-generated")]),
        "A document was viewed.", prefix=trace(hospital)),
        status="processed", kind="auto_reply")
    add("helpdesk_ticket_ack.eml", mail(
        person("IT Service Desk", "servicedesk@homes.example",
               "[Ticket#12345] RE: [RR-2026-001] Information request", "<hd1@homes.example>"),
        "This is an automated response. Your request has been logged with reference 12345.",
        prefix=trace(housing)),
        status="processed", kind="auto_reply")
    add("sr_helpdesk_ack.eml", mail(
        person("Safeguarding Hub", "safeguarding@hospital.example",
               "[SR-55] Your email has been received", "<hd2@hospital.example>"),
        "Thank you. Your email has been received and a case has been logged.",
        prefix=trace(hospital)),
        status="processed", kind="auto_reply")
    add("x_auto_response_suppress_all.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Meeting accepted",
               "<xs1@gp.example>", extra=[("X-Auto-Response-Suppress", "All")]),
        "Accepted.", prefix=trace(gp)),
        status="processed", kind="auto_reply")

    # Bounces: which of our messages failed, and to whom.
    add("exchange_ndr_hospital.eml", dsn(
        "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@hospital.example",
        "Undeliverable: [RR-2026-001] Information request", "robin.nurse@hospital.example",
        HOSPITAL_REQUEST, "smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found",
        headers_only=True),
        status="processed", kind="bounce", case="RR-2026-001", agency="hospital",
        contact_problem="bounced", queued=["bounce_alert", "agency_reminder"])
    add("postfix_bounce_gp.eml", dsn(
        "MAILER-DAEMON@mail.gp.example", "Undelivered Mail Returned to Sender",
        "lee.safeguarding@gp.example", GP_REQUEST,
        "smtp; 550 5.1.1 <lee.safeguarding@gp.example>: Recipient address rejected"),
        status="processed", kind="bounce", case="RR-2026-001", agency="gp",
        contact_problem="bounced", queued=["bounce_alert", "agency_reminder"])
    add("gmail_text_bounce.eml", (
        "Return-Path: <>\r\nFrom: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        "To: rapidreview@exampleshire.example\r\nSubject: Delivery Status Notification "
        "(Failure)\r\nMessage-ID: <gb1@mx.google.com>\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n** Address not found **\r\n\r\nYour "
        "message wasn't delivered to avery.housing@homes.example because the address couldn't "
        f"be found.\r\n\r\n----- Original message -----\r\nMessage-ID: {HOUSING_REQUEST}\r\n"
        "Subject: [RR-2026-001] Information request\r\n").encode(),
        status="processed", kind="bounce", case="RR-2026-001", agency="housing",
        contact_problem="bounced",
        # Housing is asked on both cases: each request is chased through its stand-in.
        queued=["bounce_alert", "agency_reminder", "agency_reminder"])
    add("delayed_dsn.eml", dsn(
        "postmaster@hospital.example", "Delivery Status Notification (Delay)",
        "robin.nurse@hospital.example", HOSPITAL_REQUEST, "smtp; 451 4.4.1 try again later",
        action="delayed"),
        status="processed", kind="bounce", queued=[])
    add("bounce_not_ours.eml", dsn(
        "MAILER-DAEMON@mail.elsewhere.test", "Undelivered Mail Returned to Sender",
        "victim@elsewhere.test", "<spam123@spammer.test>", "smtp; 550 no such user"),
        status="processed", kind="bounce", reason="did not send", queued=[])

    # Our own mail, coming back.
    add("own_mail_copy.eml", mail(
        [("From", "Rapid Review <rapidreview@exampleshire.example>"),
         ("To", "lee.safeguarding@gp.example"), ("Subject", "[RR-2026-001] Information request"),
         ("Message-ID", GP_REQUEST), ("Auto-Submitted", "auto-generated")], "Please reply."),
        status="processed", kind="own_mail")
    add("own_mail_key_header_via_forwarder.eml", mail(
        [("From", "Forwarder <fwd@relay.test>"), ("To", "rapidreview@exampleshire.example"),
         ("Subject", "[RR-2026-001] Information request"), ("Message-ID", "<f1@relay.test>"),
         ("X-RRBot-Key", "RR-2026-001:agency:gp:request")], "Please reply."),
        status="processed", kind="own_mail")
    add("own_mail_message_id.eml", mail(
        [("From", "Forwarder <fwd@relay.test>"), ("To", "rapidreview@exampleshire.example"),
         ("Subject", "Fwd: something"),
         ("Message-ID", request_message_id("RR-2026-001", "school"))], "x"),
        status="processed", kind="own_mail")
    # An unkeyed id of our form can be worked out by anyone: it hides nothing.
    add("own_mail_unkeyed_message_id.eml", mail(
        [("From", "Forwarder <fwd@relay.test>"), ("To", "rapidreview@exampleshire.example"),
         ("Subject", "Fwd: something"),
         ("Message-ID", "<rr.0123456789abcdef0123456789abcdef@exampleshire.example>")], "x"),
        status="quarantined", kind="unverified_sender")

    # Our own address or key header, written by someone else: never filed away unseen.
    add("own_address_spoofed.eml", mail(
        [("From", "Rapid Review <rapidreview@exampleshire.example>"),
         ("To", "rapidreview@exampleshire.example"), ("Subject", "Please update the referral"),
         ("Message-ID", "<x91@attacker.test>")], "Change the agency list."),
        status="quarantined", kind="unverified_sender")
    add("own_key_header_made_up.eml", mail(
        [("From", "Someone <someone@attacker.test>"), ("To", "rapidreview@exampleshire.example"),
         ("Subject", "Referral"), ("Message-ID", "<x92@attacker.test>"),
         ("X-RRBot-Key", "RR-2026-001:made:up")], "Hide me."),
        status="quarantined", kind="unverified_sender")

    # Limits and malformed mail: quarantined with the reason, never a crash.
    add("mime_bomb_deep.eml", nested(30), status="quarantined", kind="limits",
        reason="nested more than 20")
    add("mime_bomb_many_parts.eml", many_parts(1200), status="quarantined", kind="limits",
        reason="more than 1000")
    add("oversized.eml", mail(
        person("Dr Lee Safeguarding", "lee.safeguarding@gp.example", "Big", "<big@gp.example>"),
        "x" * 4000, prefix=trace(gp)), status="quarantined", kind="limits", reason="over the limit",
        config={"mailbox.max_message_bytes": 2048})
    add("undecodable_subject.eml", (
        trace(gp) + "From: Dr Lee <lee.safeguarding@gp.example>\r\nTo: rapidreview@"
        "exampleshire.example\r\nMessage-ID: <ud1@gp.example>\r\n").encode()
        + b"Subject: R\xe9f\xe9rence \xff\xfe RR\r\n\r\nbody\r\n",
        status="quarantined", kind="limits", reason="Subject header")
    add("no_from_header.eml", (
        b"To: rapidreview@exampleshire.example\r\nSubject: hello\r\nMessage-ID: <nf1@x.test>"
        b"\r\n\r\nbody\r\n"), status="quarantined", kind="unverified_sender",
        reason="exactly one address")
    add("multipart_without_boundary.eml", (
        trace(gp) + "From: Dr Lee <lee.safeguarding@gp.example>\r\nTo: rapidreview@"
        "exampleshire.example\r\nSubject: RE: [RR-2026-001] Information request\r\n"
        "Message-ID: <mb1@gp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed"
        "\r\n\r\nNo records held.\r\n").encode(),
        status="processed", kind="agency_question", case="RR-2026-001", agency="gp")
    add("two_from_addresses.eml", mail(
        [("From", "Dr Lee <lee.safeguarding@gp.example>, Evil <evil@evil.test>"),
         ("To", "rapidreview@exampleshire.example"), ("Subject", "Referral"),
         ("Message-ID", "<tf1@evil.test>")], "Referral.", prefix=trace(gp)),
        status="quarantined", kind="unverified_sender", reason="exactly one address")

    # The National Panel and the business manager.
    add("panel_acknowledgement.eml", mail(
        person("National Panel", "Mailbox.NationalReviewPanel@education.gov.uk",
               "RE: [RR-2026-001] Rapid Review report", "<np1@education.gov.uk>"),
        "Thank you, received.", prefix=trace("education.gov.uk")),
        status="processed", kind="panel_reply", case="RR-2026-001", panel_acknowledged=True)
    add("panel_no_case.eml", mail(
        person("National Panel", "Mailbox.NationalReviewPanel@education.gov.uk",
               "Panel newsletter", "<np2@education.gov.uk>"),
        "Dear colleagues.", prefix=trace("education.gov.uk")),
        status="quarantined", kind="panel_reply", reason="names no case")
    add("manager_report_upload.eml", mail(
        person("Sam Example", "sam.example@exampleshire.example", "REPORT RR-2026-001 v2",
               "<rep1@exchangelabs.com>"), "Draft attached.", prefix=trace(OUR_DOMAIN),
        files=[("report.docx", partial, "application", DOCX)]),
        # Inbound intake lets it pass; the report-upload handler (a later issue) takes it.
        status="processed", kind="report_upload", case="RR-2026-001")
    add("manager_other_mail.eml", mail(
        person("Sam Example", "sam.example@exampleshire.example", "Lunch on Friday?",
               "<lm1@exchangelabs.com>"), "Anyone?", prefix=trace(OUR_DOMAIN)),
        status="quarantined", kind="unrecognised")
    add("partner_member_on_case.eml", mail(
        person("Pat Nurse", "pat.nurse@icb.example", "RE: [RR-2026-002] thoughts",
               "<pm1@icb.example>"), "See you at the meeting.", prefix=trace("icb.example")),
        status="quarantined", kind="case_mail", case="RR-2026-002")
    add("spam_unknown.eml", mail(
        person("Prize Team", "win@prizes.test", "You have won", "<sp@prizes.test>"),
        "Click here.", prefix=trace("prizes.test", "dmarc=fail")),
        status="quarantined", kind="unverified_sender")
    return found


def _with_inline_image(raw: bytes, image: bytes) -> bytes:
    from email import message_from_bytes

    message = message_from_bytes(raw, policy=policy.SMTP)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("related", "html"))
    assert body is not None
    body.add_related(image, maintype="image", subtype="png", cid="<sig>",
                     disposition="inline", filename="image001.png")
    return message.as_bytes()


def dsn(sender: str, title: str, recipient: str, original_id: str, diagnostic: str, *,
        action: str = "failed", headers_only: bool = False) -> bytes:
    """Build a delivery status notification (RFC 3464) the way Exchange or Postfix does."""
    kind = "text/rfc822-headers" if headers_only else "message/rfc822"
    original = (f"From: Rapid Review <rapidreview@{OUR_DOMAIN}>\r\nTo: {recipient}\r\n"
                f"Subject: [RR-2026-001] Information request\r\nMessage-ID: {original_id}\r\n"
                "Auto-Submitted: auto-generated\r\n")
    if not headers_only:
        original += "Content-Type: text/plain\r\n\r\nPlease reply.\r\n"
    return (
        f"Return-Path: <>\r\nFrom: Mail Delivery System <{sender}>\r\nTo: rapidreview@"
        f"{OUR_DOMAIN}\r\nSubject: {title}\r\nMessage-ID: <dsn.{abs(hash(title)) % 99999}"
        f"@{sender.rpartition('@')[2]}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nDelivery has failed to these recipients or "
        f"groups:\r\n\r\n{recipient}\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n"
        f"\r\nReporting-MTA: dns; {sender.rpartition('@')[2]}\r\n\r\nFinal-Recipient: rfc822; "
        f"{recipient}\r\nAction: {action}\r\nStatus: 5.1.1\r\nDiagnostic-Code: {diagnostic}\r\n"
        f"\r\n--b1\r\nContent-Type: {kind}\r\n\r\n{original}\r\n--b1--\r\n"
    ).encode()


def nested(depth: int) -> bytes:
    """Build a message whose multiparts nest depth deep."""
    body = "Content-Type: text/plain\r\n\r\nhello\r\n"
    for level in range(depth):
        body = (f"Content-Type: multipart/mixed; boundary=\"n{level}\"\r\n\r\n--n{level}\r\n"
                f"{body}\r\n--n{level}--\r\n")
    return (trace("gp.example") + "From: Dr Lee <lee.safeguarding@gp.example>\r\nTo: "
            "rapidreview@exampleshire.example\r\nSubject: RE: [RR-2026-001]\r\nMessage-ID: "
            f"<deep@gp.example>\r\nMIME-Version: 1.0\r\n{body}").encode()


def many_parts(count: int) -> bytes:
    """Build a message with count text parts."""
    parts = "".join(f"--m\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(count))
    return (trace("gp.example") + "From: Dr Lee <lee.safeguarding@gp.example>\r\nTo: "
            "rapidreview@exampleshire.example\r\nSubject: RE: [RR-2026-001]\r\nMessage-ID: "
            "<many@gp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            f"boundary=\"m\"\r\n\r\n{parts}--m--\r\n").encode()


def toml_value(value: Any) -> str:
    """Write a TOML value (strings, booleans, ints, lists and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    """Write every .eml and the manifest expected.toml."""
    lines = ["# What the inbound pipeline must make of each message in this folder.",
             "# Written by make_corpus.py; tests/corpus/test_corpus.py asserts every entry.", ""]
    from tests.corpus.hostile import hostile_specs

    for spec in specs() + hostile_specs():
        (HERE / spec.name).write_bytes(spec.raw)
        lines.append(f'["{spec.name}"]')
        lines.extend(f"{key} = {toml_value(value)}" for key, value in spec.expect.items())
        lines.append("")
    (HERE / "expected.toml").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
