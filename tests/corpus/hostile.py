"""Hostile and boundary-shaped corpus messages: who may make the bot act, and who may not.

Written by make_corpus.py with the rest of the corpus; expected outcomes go in expected.toml.
The trace headers follow the documented shapes in tests/corpus/shapes.py.
"""

from __future__ import annotations

from typing import Any

from tests.corpus.hostile_input import input_specs
from tests.corpus.make_corpus import (
    DOCX,
    FULL_FORM,
    GP_REQUEST,
    HOSPITAL_REQUEST,
    Spec,
    docx_form,
    dsn,
    mail,
    person,
    trace,
)
from tests.corpus.shapes import (
    eop_results,
    exchange_internal,
    exchange_online,
    gmail,
    mimecast,
    opendkim,
    rewriting_relay,
    sender_hop,
)
from tests.handlers.world import request_message_id

GP, HOSPITAL, HOMES = "gp.example", "hospital.example", "homes.example"
LEE = ("Dr Lee Safeguarding", "lee.safeguarding@gp.example")
EO = {"mailbox.boundary": "exchange-online"}
MIMECAST = {"mailbox.trusted_authserv_id": "relay.mimecast.com",
            "mailbox.internal_relays": ["*.exampleshire.local"]}
GOOGLE = {"mailbox.trusted_authserv_id": "mx.google.com"}
# Case 2's requests went out before Message-IDs were keyed: anyone can work theirs out.
LEGACY_SCHOOL = request_message_id("RR-2026-002", "school")
LEGACY_HOUSING = request_message_id("RR-2026-002", "housing")
REFERRAL = dict(status="processed", kind="referral", case="RR-2026-003",
                queued=["referral_ack", "referral_copy"])
UNVERIFIED = dict(status="quarantined", kind="unverified_sender")
RETURN_GP = dict(status="processed", kind="agency_return", case="RR-2026-001", agency="gp",
                 request_status="returned", queued=["agency_receipt"], documents=1)


def referral(prefix: str, number: str, sender: tuple[str, str] = LEE,
             extra: list[tuple[str, str]] = ()) -> bytes:  # type: ignore[assignment]
    """Build a referral with its form attached, under the given trace headers."""
    return mail(person(sender[0], sender[1], "Serious incident referral",
                       f"<h{number}@mail.gp.example>", extra=extra),
                "Please find attached a referral.", prefix=prefix,
                files=[("Referral form.docx", docx_form(**FULL_FORM), "application", DOCX)])


def agency_return(prefix: str, number: str) -> bytes:
    """Build the GP's single agency summary, in reply to the bot's request."""
    return mail(person(*LEE, "RE: [RR-2026-001] Information request", f"<r{number}@gp.example>",
                       in_reply_to=GP_REQUEST), "Our summary is attached.", prefix=prefix,
                files=[("GP summary.pdf", b"%PDF-1.4\n%%EOF\n", "application", "pdf")])


def hostile_specs() -> list[Spec]:
    """Every hostile or boundary-shaped corpus message with its expected outcome."""
    found: list[Spec] = []

    def add(name: str, raw: bytes, **expect: Any) -> None:
        found.append(Spec(name, raw, expect))

    boundary_specs(add)
    automatic_specs(add)
    for spec in input_specs():
        found.append(spec)
    return found


def boundary_specs(add: Any) -> None:
    """Exchange Online, Mimecast, Google, OpenDKIM and a rewriting relay, genuine and forged."""
    forged_eop = eop_results(GP) + sender_hop(GP, "relay.evil.test")
    add("eo_referral.eml", referral(exchange_online(GP), "1"), **REFERRAL, config=EO)
    add("eo_agency_return.eml", agency_return(exchange_online(GP), "1"), **RETURN_GP, config=EO)
    add("eo_referral_forged_below.eml", referral(exchange_online(GP, "fail", below=forged_eop),
                                                 "2"), **UNVERIFIED, config=EO,
        reason="did not authenticate")
    add("eo_return_forged_below.eml", agency_return(
        exchange_online(GP, "fail", below=forged_eop), "2"), **UNVERIFIED, config=EO)
    add("eo_referral_only_forged_below.eml", referral(exchange_online(
        GP, results=False, below=forged_eop), "3"), **UNVERIFIED, config=EO,
        reason="from outside ignored")
    add("eo_results_original_ignored.eml", referral(exchange_online(
        GP, "fail", below=eop_results(GP, name="Authentication-Results-Original")), "4"),
        **UNVERIFIED, config=EO)
    inside = ("Authentication-Results: mx.exampleshire.example; dmarc=pass header.from=gp.example"
              "\r\n")
    add("eo_authserv_id_results_ignored.eml", referral(inside + exchange_online(GP, "fail"), "5"),
        **UNVERIFIED, config=EO)
    tenant_to_tenant = exchange_online(GP, "fail", entry=False, below=(
        "Received: from EUR05-AM6-obe.outbound.protection.outlook.com (40.107.22.50) by\r\n"
        " DB1PEPF000509E4.mail.protection.outlook.com with Microsoft SMTP Server;"
        " Thu, 5 Mar 2026 09:58:01 +0000\r\n" + eop_results(GP)))
    add("eo_other_tenant_forged.eml", referral(tenant_to_tenant, "6"), **UNVERIFIED, config=EO)
    add("eo_default_config_quarantines.eml", referral(exchange_online(GP), "7"), **UNVERIFIED,
        reason="no authentication results")
    manager = ("Sam Example", "sam.example@exampleshire.example")
    upload = [("REPORT RR-2026-001 v2", "Draft attached.")]
    add("eo_internal_manager_report.eml", mail(
        person(*manager, upload[0][0], "<rep9@exampleshire.example>"), upload[0][1],
        prefix=exchange_internal(),
        files=[("report.docx", docx_form(), "application", DOCX)]),
        status="processed", kind="report_upload", case="RR-2026-001", config=EO)
    add("eo_outside_claims_internal.eml", mail(
        person(*manager, upload[0][0], "<rep8@evil.test>"), upload[0][1],
        prefix=exchange_online("exampleshire.example", "fail", auth_as="Internal"),
        files=[("report.docx", docx_form(), "application", DOCX)]), **UNVERIFIED, config=EO)
    best_guess = ("Authentication-Results: spf=pass (sender IP is 203.0.113.5)\r\n"
                  " smtp.mailfrom=gp.example; dkim=pass (signature was verified)\r\n"
                  " header.d=gp.example;dmarc=bestguesspass action=none\r\n"
                  " header.from=gp.example;compauth=pass reason=109\r\n")
    add("eo_bestguesspass_spf_dkim.eml", referral(exchange_online(
        GP, results=False) .replace("Received: from mail.gp.example", best_guess
                                   + "Received: from mail.gp.example"), "8"),
        **REFERRAL, config=EO)
    add("mimecast_onprem_referral.eml", referral(mimecast(GP), "9"), **REFERRAL, config=MIMECAST)
    add("mimecast_without_internal_relays.eml", referral(mimecast(GP), "10"), **UNVERIFIED,
        config={"mailbox.trusted_authserv_id": "relay.mimecast.com"},
        reason="from outside ignored")
    forged_mc = sender_hop(GP, "relay.evil.test") + (
        "Authentication-Results: relay.mimecast.com; dmarc=pass header.from=gp.example\r\n")
    add("mimecast_forged_below.eml", referral(mimecast(GP, "fail", below=forged_mc), "11"),
        **UNVERIFIED, config=MIMECAST)
    add("gmail_workspace_return.eml", agency_return(gmail(GP), "3"), **RETURN_GP, config=GOOGLE)
    forged_google = sender_hop(GP, "smtp.evil.test") + (
        "Authentication-Results: mx.google.com; dkim=pass header.i=@gp.example;"
        " spf=pass smtp.mailfrom=gp.example; dmarc=pass header.from=gp.example\r\n")
    add("gmail_workspace_forged_below.eml", agency_return(gmail(GP, "fail", forged_google), "4"),
        **UNVERIFIED, config=GOOGLE)
    add("opendkim_spf_dkim_no_dmarc_record.eml", agency_return(opendkim(GP), "5"), **RETURN_GP)
    add("opendkim_quoted_semicolon_spoof.eml", referral(opendkim(
        GP, dmarc="fail", dkim="none", spf='pass smtp.mailfrom="x;dmarc=pass"@evil.example'),
        "12"), **UNVERIFIED)
    add("opendkim_comment_semicolon_spoof.eml", referral(opendkim(
        GP, dmarc="none (p=none; dmarc=pass)", dkim="fail", spf="pass smtp.mailfrom=gp.example"),
        "13"), **UNVERIFIED, reason="did not authenticate")
    add("relay_srs_dkim_intact.eml", mail(person(
        "Robin Named Nurse", "robin.nurse@hospital.example", "Re: [RR-2026-001] Information"
        " request", "<rl1@hospital.example>", in_reply_to=HOSPITAL_REQUEST),
        "Not known to us, no records held.", prefix=rewriting_relay(HOSPITAL)),
        status="processed", kind="agency_no_involvement", case="RR-2026-001", agency="hospital")
    add("relay_srs_dkim_broken.eml", mail(person(
        "Robin Named Nurse", "robin.nurse@hospital.example", "Re: [RR-2026-001] Information"
        " request", "<rl2@hospital.example>", in_reply_to=HOSPITAL_REQUEST),
        "No records held.", prefix=rewriting_relay(HOSPITAL, dkim_intact=False)), **UNVERIFIED)
    add("relay_from_rewritten.eml", mail(person(
        "Robin Named Nurse via Secure Mail", "noreply@relay.securemail.example",
        "Serious incident referral", "<rl3@relay.securemail.example>",
        extra=[("Reply-To", "robin.nurse@hospital.example")]), "Referral.",
        prefix=trace("relay.securemail.example")), **UNVERIFIED,
        reason="not a configured contact")
    add("authres_version_number.eml", referral(
        "Authentication-Results: mx.exampleshire.example 1; dmarc=pass header.from=gp.example\r\n"
        + sender_hop(GP, "mx.exampleshire.example"), "14"), **REFERRAL)
    add("authres_upper_case.eml", referral(
        "Authentication-Results: MX.EXAMPLESHIRE.EXAMPLE; DMARC=PASS HEADER.FROM=GP.EXAMPLE\r\n"
        + sender_hop(GP, "mx.exampleshire.example"), "15"), **REFERRAL)
    add("authres_two_dkim_signatures.eml", referral(
        "Authentication-Results: mx.exampleshire.example; dkim=pass header.d=esp.example;\r\n"
        " dkim=pass header.d=gp.example; spf=pass smtp.mailfrom=bounce.gp.example\r\n"
        + sender_hop(GP, "mx.exampleshire.example"), "16"), **REFERRAL)
    add("received_by_in_comment.eml", referral(
        "Authentication-Results: mx.exampleshire.example; dmarc=fail header.from=gp.example\r\n"
        "Received: from x (helo by mx.exampleshire.example) by relay.evil.test; "
        "Thu, 5 Mar 2026 09:58:01 +0000\r\n"
        "Authentication-Results: mx.exampleshire.example; dmarc=pass header.from=gp.example\r\n",
        "17"), **UNVERIFIED)


def automatic_specs(add: Any) -> None:
    """Delivery reports and automatic replies: believed only when authenticated or keyed."""
    add("dsn_forged_unkeyed_legacy_id.eml", dsn(
        "MAILER-DAEMON@mail.evil.test", "Undelivered Mail Returned to Sender (school)",
        "jamie.education@exampleshire.example", LEGACY_SCHOOL, "smtp; 550 5.1.1 no such user"),
        status="quarantined", kind="bounce", reason="unkeyed", queued=[])
    add("dsn_forged_unkeyed_housing.eml", dsn(
        "postmaster@homes.example", "Undeliverable: [RR-2026-002] Information request",
        "avery.housing@homes.example", LEGACY_HOUSING, "smtp; 550 5.1.10 not found"),
        status="quarantined", kind="bounce", reason="unkeyed", queued=[])
    # The request's id with its 16-digit tag guessed (the digest part anyone can work out).
    guessed = GP_REQUEST[:20] + "0" * 16 + GP_REQUEST[36:]
    add("dsn_guessed_tag.eml", dsn(
        "MAILER-DAEMON@mail.evil.test", "Undelivered Mail Returned to Sender (guess)",
        "lee.safeguarding@gp.example", guessed, "smtp; 550 5.1.1 no such user"),
        status="processed", kind="bounce", reason="did not send", queued=[])
    add("dsn_authenticated_legacy_id.eml", trace(HOMES).encode() + dsn(
        "postmaster@homes.example", "Undeliverable: [RR-2026-002] housing",
        "avery.housing@homes.example", LEGACY_HOUSING, "smtp; 550 5.1.10 not found"),
        status="processed", kind="bounce", agency="housing", contact_problem="bounced",
        queued=["bounce_alert", "agency_reminder", "agency_reminder"])
    add("dsn_text_only_legacy_id.eml", (
        "Return-Path: <>\r\nFrom: Mail Delivery Subsystem <mailer-daemon@mail.evil.test>\r\n"
        "To: rapidreview@exampleshire.example\r\nSubject: Delivery Status Notification "
        "(Failure)\r\nMessage-ID: <tx1@mail.evil.test>\r\nAuto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nYour message wasn't delivered to "
        "jamie.education@exampleshire.example.\r\n\r\n----- Original message -----\r\n"
        f"Message-ID: {LEGACY_SCHOOL}\r\n").encode(),
        status="quarantined", kind="bounce", reason="unkeyed", queued=[])
    ooo = [("Auto-Submitted", "auto-replied")]
    add("ooo_forged_quoting_legacy_id.eml", mail(person(
        "Avery Housing", "avery.housing@homes.example", "Automatic reply: [RR-2026-002]"
        " Information request", "<oo1@evil.test>", in_reply_to=LEGACY_HOUSING, extra=ooo),
        "I am out of the office until next month."),
        status="quarantined", kind="out_of_office", reason="nothing was changed", queued=[])
    add("ooo_unauthenticated_keyed_id.eml", mail(person(
        "Robin Named Nurse", "robin.nurse@hospital.example", "Automatic reply: [RR-2026-001]"
        " Information request", "<oo2@hospital.example>", in_reply_to=HOSPITAL_REQUEST,
        extra=ooo), "I am on annual leave."),
        status="processed", kind="out_of_office", agency="hospital",
        contact_problem="out_of_office")
    add("auto_reply_unauthenticated_noted_only.eml", mail(person(
        *LEE, "Re: escalation", "<ar9@evil.test>", extra=[("X-Autorespond", "yes")]),
        "Your message has been received."),
        status="processed", kind="auto_reply", reason="did not authenticate")
    listed = [("List-Id", "<referrals.forms.gp.example>"), ("Precedence", "bulk"),
              ("Auto-Submitted", "auto-generated")]
    add("authenticated_referral_with_list_headers.eml", referral(trace(GP), "20", extra=listed),
        **REFERRAL)
    add("unauthenticated_referral_with_list_headers.eml", referral("", "21", extra=listed),
        **UNVERIFIED)
    add("unknown_online_form_referral.eml", referral(
        trace("forms.test"), "22", sender=("Online Forms", "noreply@forms.test"),
        extra=listed), **UNVERIFIED, reason="not a configured contact")
