"""The business manager and the partners use the cockpit in a real browser."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from docx import Document as WordDocument

from bot.store.models import AuditEntry, OutboxMessage, PlannedAction
from bot.store.statuses import PlannedActionStatus
from tests.web.conftest import (
    MANAGER,
    POLICE,
    READER,
    REFERENCE,
    Cockpit,
    accessible,
    eventually,
    rows,
)

pytestmark = pytest.mark.slow


def report_docx() -> bytes:
    document = WordDocument()
    document.add_heading("Rapid Review report", level=1)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_the_manager_signs_in_by_link_and_reads_the_board_and_the_case(
        cockpit: Cockpit) -> None:
    # Given the business manager on the sign-in page,
    page = cockpit.page()
    page.goto(f"{cockpit.url}/cases")
    assert page.url.endswith("/sign-in")
    accessible(page)
    # when she asks for a link and follows it from her email,
    cockpit.sign_in(page, MANAGER)
    # then the board shows the case on Day 1 of 15, waiting for the partners' decision,
    board = page.locator("main").inner_text()
    assert REFERENCE in board and "Day 1 of 15" in board
    assert "Decision: Local Authority, Police, Health" in board
    accessible(page)
    # and the case page shows the dated plan, in London time and in words.
    page.click(f"text={REFERENCE}")
    plan = page.locator("#plan + ol").inner_text()
    assert "Due by 17:00 on Monday 21 December 2026" in plan
    accessible(page)
    for tab in ("/cases?tab=closed", "/undelivered", "/cases/new/open-case"):
        page.goto(cockpit.url + tab)
        accessible(page)
    # And the link does not work twice.
    link = cockpit.link(MANAGER, r"http://\S+/sign-in/link/\S+")
    again = cockpit.page()
    again.goto(link)
    again.click("main button[type=submit]")
    assert "has been used" in again.locator("main").inner_text()


def test_extending_a_deadline_replans_the_reminders(decided: Cockpit) -> None:
    # Given the business manager signed in on a decided case,
    page = decided.page()
    decided.sign_in(page, MANAGER)
    page.goto(f"{decided.url}/cases/{REFERENCE}/extend")
    accessible(page)
    # when she sends the form empty, she is told what is missing, accessibly,
    page.click("main button[type=submit]")
    assert "Choose agency" in page.locator(".govuk-error-summary").inner_text()
    accessible(page)
    # and when she picks the GP and Friday 8 January 2027 in the date fields,
    page.select_option("#agency", "gp")
    page.fill("#date-day", "8")
    page.fill("#date-month", "1")
    page.fill("#date-year", "2027")
    page.click("main button[type=submit]")
    # then the case page shows the new deadline and the reminders planned before it,
    banner = page.locator(".govuk-notification-banner").inner_text()
    assert "17:00 on Friday 8 January 2027" in banner
    gp_row = page.locator("tr", has_text="Exampleshire GP Federation").inner_text()
    assert "17:00 on Friday 8 January 2027" in gp_row
    assert "Next reminder" in gp_row and "January 2027" in gp_row
    planned = rows(decided, PlannedAction, PlannedAction.status == PlannedActionStatus.PENDING)
    assert any(":agency:gp:remind:" in p.key and "20270108T1700" in p.key for p in planned)
    # and the audit names her.
    extended = rows(decided, AuditEntry, AuditEntry.action == "agency_request_extended")
    assert [entry.actor for entry in extended] == ["business manager Sam Example (web)"]


def test_a_one_off_agency_is_asked_without_touching_the_config(decided: Cockpit) -> None:
    # Given the business manager on the case,
    page = decided.page()
    decided.sign_in(page, MANAGER)
    page.goto(f"{decided.url}/cases/{REFERENCE}/add-one-off-agency")
    accessible(page)
    # when she adds a nursery that is not in config.toml,
    page.fill("#name", "Little Acorns Nursery")
    page.fill("#contact", "dsl@acorns.example")
    page.fill("#escalation", "manager@acorns.example")
    page.click("main button[type=submit]")
    # then its request goes out from the partnership mailbox,
    agencies = page.locator("#agencies + .rr-table-scroll table")
    assert "Little Acorns Nursery" in agencies.inner_text()
    request = eventually(lambda: decided.sent("dsl@acorns.example",
                                              ":agency:little_acorns_nursery:request"),
                         "the nursery's request")
    assert REFERENCE in str(request[0]["Subject"])


def test_a_report_upload_opens_sign_off_and_phone_votes_queue_the_submission(
        decided: Cockpit, tmp_path: Path) -> None:
    # Given the business manager with a report version on her laptop,
    page = decided.page()
    decided.sign_in(page, MANAGER)
    page.goto(f"{decided.url}/cases/{REFERENCE}/report")
    accessible(page)
    report = tmp_path / "report-v1.docx"
    report.write_bytes(report_docx())
    # when she uploads it,
    page.set_input_files("#report", str(report))
    page.click("main button[type=submit]")
    # then the case shows version 1 and its sign-off ballot,
    assert "Version 1" in page.locator("#report + ul").inner_text()
    assert "Sign-off of version" in page.locator("main").inner_text()
    # and when she records two partners' approvals given by phone,
    for member in ("police|" + POLICE, "health|pat.nurse@icb.example"):
        page.goto(f"{decided.url}/cases/{REFERENCE}/phone-vote")
        page.check("#kind-2")
        page.select_option("#member", member)
        page.select_option("#choice", "approve")
        page.fill("#evidence", "By phone to Sam.")
        page.click("main button[type=submit]")
    # then quorum is reached, the version is approved and the submission is queued.
    assert "The ballot closed: approve" in page.locator(".govuk-notification-banner").inner_text()
    assert "Approved by the partners" in page.locator("#report + ul").inner_text()
    assert rows(decided, OutboxMessage, OutboxMessage.purpose == "submission")
    accessible(page)


def test_a_partner_approves_by_link_once(decided: Cockpit, tmp_path: Path) -> None:
    # Given a report version out for sign-off,
    page = decided.page()
    decided.sign_in(page, MANAGER)
    page.goto(f"{decided.url}/cases/{REFERENCE}/report")
    report = tmp_path / "report-v1.docx"
    report.write_bytes(report_docx())
    page.set_input_files("#report", str(report))
    page.click("main button[type=submit]")
    # when the police lead opens the link in their sign-off email (twice, in two tabs),
    link = decided.link(POLICE, r"http://\S+/vote/\S+", "signoff_request")
    partner = decided.page()
    partner.goto(link)
    stale = decided.page()
    stale.goto(link)
    text = partner.locator("main").inner_text()
    assert REFERENCE in text and "Ellis" not in text
    assert re.search(r"[0-9a-f]{12}", partner.locator(".rr-hash").inner_text())
    accessible(partner)
    # and approves,
    partner.check("#choice")
    partner.click("main button[type=submit]")
    assert "Vote counted" in partner.locator("h1").inner_text()
    accessible(partner)
    # then the vote counts as the police's, and a second use of the link is refused.
    stale.check("#choice")
    stale.click("main button[type=submit]")
    assert "has been used" in stale.locator("main").inner_text()
    partner.goto(link)
    assert "This link has been used" in partner.locator("main").inner_text()
    votes = rows(decided, AuditEntry, AuditEntry.action == "vote_cast")
    assert ['"source": "web"' in vote.detail for vote in votes] == [True]


def test_a_reader_may_read_but_not_act(cockpit: Cockpit) -> None:
    # Given the review's chair, a reader, signed in,
    page = cockpit.page()
    cockpit.sign_in(page, READER)
    # when they open the case and then an action's address,
    page.goto(f"{cockpit.url}/cases/{REFERENCE}")
    assert "What you can do" not in page.locator("main").inner_text()
    answer = page.goto(f"{cockpit.url}/cases/{REFERENCE}/phone-vote")
    # then they are refused, and told so.
    assert answer is not None and answer.status == 403
    assert "only the partnership's business manager" in page.locator("main").inner_text()
    accessible(page)


def test_a_stranger_cannot_get_a_sign_in_link(cockpit: Cockpit) -> None:
    page = cockpit.page()
    page.goto(f"{cockpit.url}/sign-in")
    page.fill("#address", "someone@elsewhere.example")
    page.click("main button[type=submit]")
    assert "only for the partnership's business manager" in page.locator("main").inner_text()
    assert cockpit.sent("someone@elsewhere.example") == []


def test_a_form_without_its_csrf_token_is_refused(decided: Cockpit) -> None:
    # Given the business manager on the withdraw form,
    page = decided.page()
    decided.sign_in(page, MANAGER)
    page.goto(f"{decided.url}/cases/{REFERENCE}/withdraw")
    # when the form is sent without its token,
    page.evaluate("document.querySelector('form:not(.rr-inline-form) input[name=csrf_token]')"
                  ".remove()")
    page.select_option("#agency", "gp")
    page.click("main button[type=submit]")
    # then nothing is done.
    assert "This form has expired" in page.locator("h1").inner_text()
    assert rows(decided, AuditEntry, AuditEntry.action == "agency_request_closed") == []


def test_an_idle_session_is_sent_back_to_sign_in(cockpit: Cockpit) -> None:
    page = cockpit.page()
    cockpit.sign_in(page, MANAGER)
    # Given 21 minutes without a request,
    cockpit.clock.now += timedelta(minutes=21)
    # when she comes back, she is asked to sign in again, and told why.
    page.goto(f"{cockpit.url}/cases")
    assert page.url.endswith("/sign-in")
    assert "signed out after 20 minutes" in page.locator("main").inner_text()
