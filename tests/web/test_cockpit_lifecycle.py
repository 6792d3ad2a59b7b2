"""The business manager settles quarantined mail and ends a case in the cockpit, in a browser."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col

from bot.store.models import AuditEntry, InboundMessage, OutboxMessage
from bot.store.statuses import InboundStatus
from tests.scenarios.test_quarantined_referral import PARENT, deliver, parent_referral
from tests.web.conftest import MANAGER, READER, REFERENCE, Cockpit, accessible, eventually, rows

pytestmark = pytest.mark.slow
SECOND = "RR-2026-002"


def held_referral(cockpit: Cockpit) -> InboundMessage:
    """Deliver a parent's referral to the inbox and wait for the service to hold it."""
    deliver(cockpit.folder, "parent", parent_referral(), cockpit.clock.now - timedelta(minutes=2))
    held: list[InboundMessage] = eventually(lambda: rows(
        cockpit, InboundMessage, InboundMessage.status == InboundStatus.QUARANTINED),
        "the parent's referral in quarantine")
    return held[0]


def test_a_quarantined_referral_is_released_and_acknowledged(cockpit: Cockpit) -> None:
    # Given a parent's referral held in quarantine, and the business manager signed in,
    held = held_referral(cockpit)
    page = cockpit.page()
    cockpit.sign_in(page, MANAGER)
    # when she follows the header's link to the quarantine page,
    page.click("header >> text=Quarantined mail")
    # then she sees who sent it, when (London time, in words), and why it was held,
    card = page.locator(f"#message-{held.id}").inner_text()
    assert PARENT in card and "Referral about my neighbour's child" in card
    assert "on Monday 21 December 2026" in card and (held.reason or "") in card
    accessible(page)
    # and when she presses Release without saying what it is, she is told, accessibly;
    page.click(f"text=Release message {held.id}")
    assert "Choose what the message is" in page.locator(".govuk-error-summary").inner_text()
    accessible(page)
    # when she releases it as a referral, saying how she knows,
    page.check(f"#as-{held.id}")
    page.fill(f"#release-reason-{held.id}", "I rang the parent back.")
    page.click(f"text=Release message {held.id}")
    # then the page says the case is open and acknowledged, and the message has left quarantine,
    banner = page.locator(".govuk-notification-banner").inner_text()
    assert f"{SECOND} opened and acknowledged" in banner
    assert "No mail is waiting in quarantine" in page.locator("main").inner_text()
    # the acknowledgement is queued, and the service's next step sends it to the parent,
    assert rows(cockpit, OutboxMessage, OutboxMessage.purpose == "referral_ack")
    acknowledgement = eventually(lambda: cockpit.sent(PARENT), "the parent's acknowledgement")
    assert SECOND in str(acknowledgement[0]["Subject"])
    # and the board shows the new case, the release audited in her name.
    page.goto(f"{cockpit.url}/cases")
    assert SECOND in page.locator("main").inner_text()
    released = rows(cockpit, AuditEntry, AuditEntry.action == "quarantine_released")
    assert [entry.actor for entry in released] == ["business manager Sam Example (web)"]


def test_a_message_is_discarded_only_with_a_reason(cockpit: Cockpit) -> None:
    # Given a held message and the business manager on the quarantine page,
    held = held_referral(cockpit)
    page = cockpit.page()
    cockpit.sign_in(page, MANAGER)
    page.goto(f"{cockpit.url}/quarantine")
    # when she discards it without a reason, she is asked for one,
    page.click(f"text=Discard message {held.id}")
    assert "Enter why it can be set aside" in page.locator(".govuk-error-summary").inner_text()
    # and with one, it is set aside and kept.
    page.fill(f"#discard-reason-{held.id}", "Sent to the wrong partnership.")
    page.click(f"text=Discard message {held.id}")
    assert "is discarded" in page.locator(".govuk-notification-banner").inner_text()
    assert [row.discarded_reason for row in rows(cockpit, InboundMessage, col(
        InboundMessage.id) == held.id)] == ["Sent to the wrong partnership."]


def test_a_reader_cannot_release_quarantined_mail(cockpit: Cockpit) -> None:
    # Given a held referral and the review's chair, a reader, signed in,
    held = held_referral(cockpit)
    page = cockpit.page()
    cockpit.sign_in(page, READER)
    # when they open the quarantine page, they are refused,
    answer = page.goto(f"{cockpit.url}/quarantine")
    assert answer is not None and answer.status == 403
    assert "only the partnership's business manager" in page.locator("main").inner_text()
    accessible(page)
    # and when they post a release from the board with their session's token anyway,
    page.goto(f"{cockpit.url}/cases")
    page.evaluate("""(number) => {
        const token = document.querySelector('input[name=csrf_token]').value;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = `/quarantine/${number}/release`;
        for (const [name, value] of [['csrf_token', token], ['as', 'referral']]) {
            const input = document.createElement('input');
            input.name = name; input.value = value; form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
    }""", held.id)
    page.wait_for_load_state()
    # then it is refused, the message stays held, and no case is opened.
    assert "only the partnership's business manager" in page.locator("main").inner_text()
    assert [row.status for row in rows(cockpit, InboundMessage, col(
        InboundMessage.id) == held.id)] == [InboundStatus.QUARANTINED]
    assert rows(cockpit, AuditEntry, AuditEntry.action == "quarantine_released") == []


def fill_in(cockpit: Cockpit, page: Any, action: str, date: str = "",
            choose: tuple[str, str] | None = None, check: str = "") -> str:
    """Open an action's form on the case (checking it), fill the date and a choice, send it.

    Return the banner's or the error summary's words.
    """
    page.goto(f"{cockpit.url}/cases/{REFERENCE}/{action}")
    accessible(page)
    if choose:
        page.select_option(*choose)
    if check:
        page.check(check)
    for part, value in zip(("day", "month", "year"), date.split(), strict=False):
        page.fill(f"#date-{part}", value)
    page.click("main button[type=submit]")
    answer: str = page.locator(".govuk-notification-banner, .govuk-error-summary").inner_text()
    return answer


def test_a_case_is_reviewed_exported_and_closed(cockpit: Cockpit) -> None:
    # Given the business manager on the case,
    page = cockpit.page()
    cockpit.sign_in(page, MANAGER)
    # when she records a Panel response before the report has gone, she is told why not,
    assert "has not gone to the National Panel" in fill_in(
        cockpit, page, "panel-response", "21 12 2026", check="#decision")
    # when she commissions a local review and sets its publication date by hand,
    assert "local review is commissioned" in fill_in(cockpit, page, "commission-review",
                                                     "21 12 2026")
    # then the new date shows on the case, in words,
    assert "Tuesday 14 September 2027" in fill_in(
        cockpit, page, "set-date", "14 9 2027", ("#milestone", "local_review_publication"))
    # and the case's records download as a zip,
    with page.expect_download() as download:
        page.click("text=Download the case's records (zip)")
    saved = Path(download.value.path())
    with zipfile.ZipFile(saved) as records:
        assert records.namelist()
    # and when she closes the case, saying why (after being asked to),
    assert "Enter why the case is closed" in fill_in(cockpit, page, "close")
    page.fill("#reason", "The partners decided the criteria are not met.")
    page.click("main button[type=submit]")
    assert "The case is closed" in page.locator(".govuk-notification-banner").inner_text()
    # then it is on the closed tab and no longer among the open cases.
    page.goto(f"{cockpit.url}/cases?tab=closed")
    assert REFERENCE in page.locator("main").inner_text()
    page.goto(f"{cockpit.url}/cases")
    assert REFERENCE not in page.locator("main").inner_text()
