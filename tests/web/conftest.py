"""The cockpit in a real browser: the service on a simulated clock, Maildir mail, chromium.

`rrbot run`'s Service serves the cockpit; Debian's chromium is driven by Playwright and
axe-core checks each page.
"""

from __future__ import annotations

import mailbox
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.cases.lifecycle import find_case, open_case
from bot.cases.states import TRANSITIONS, transition
from bot.kernel.events import publish
from bot.process.working_days import parse_instant
from bot.service.run import Service
from bot.store.db import transaction
from tests.factories import build_config
from tests.servers import free_port

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).with_name("axe.min.js")
REFERENCE = "RR-2026-001"
# Friday 18 December 2026 (Day 0); the cockpit is used on Monday 21 December (Day 1).
REFERRAL = parse_instant("2026-12-18T10:00")
MONDAY = parse_instant("2026-12-21T10:00")
MANAGER = "sam.example@exampleshire.example"
READER = "charlie.chair@exampleshire.example"
POLICE = "chris.superintendent@police.example"


class SimulatedClock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """Return check()'s first truthy answer, polling the running service until a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.1)  # real-time ok: waiting for the service's engine thread, bounded
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@dataclass
class Cockpit:
    """A running service with its cockpit, its clock, its mail folder and a browser."""

    service: Service
    clock: SimulatedClock
    url: str
    folder: Path
    browser: Any

    def page(self) -> Any:
        # The axe check injects its script, which the cockpit's CSP (rightly) forbids.
        return self.browser.new_context(bypass_csp=True).new_page()

    def sent(self, to: str, purpose: str = "") -> list[EmailMessage]:
        """Every message filed in Sent to an address (with that X-RRBot-Key part), oldest first."""
        sent = mailbox.Maildir(str(self.folder / "var" / "mail" / "sent"), create=False)
        found = []
        for key in sorted(sent.keys()):
            message = message_from_bytes(sent.get_bytes(key), policy=policy.default)
            assert isinstance(message, EmailMessage)
            if to in str(message["To"]) and purpose in str(message.get("X-RRBot-Key", "")):
                found.append(message)
        return found

    def link(self, to: str, pattern: str, purpose: str = "") -> str:
        """Wait for a message to an address and return the first link in it matching pattern."""
        def newest() -> str | None:
            for message in reversed(self.sent(to, purpose)):
                body = message.get_body(preferencelist=("plain",))
                found = re.search(pattern, body.get_content() if body else "")
                if found:
                    return found.group(0)
            return None
        answer: str = eventually(newest, f"a link {pattern} mailed to {to}")
        return answer

    def sign_in(self, page: Any, address: str) -> None:
        """Ask for a sign-in link, follow it from the mail, press Sign in."""
        page.goto(f"{self.url}/sign-in")
        page.fill("#address", address)
        page.click("main button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your email"
        page.goto(self.link(address, r"http://\S+/sign-in/link/\S+"))
        page.click("main button[type=submit]")
        assert page.url.endswith("/cases")

    def database(self) -> Any:
        return self.service.engine.database


def accessible(page: Any) -> None:
    """Fail on any serious or critical axe-core violation on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))")
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{page.url}: {serious}"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Launch chromium once for the whole session (once per worker under pytest-xdist)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install-test-servers)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """Give one test the session's browser; every page it opened is closed after it."""
    yield chromium
    for context in chromium.contexts:
        context.close()


def start_cockpit(tmp_path: Path, browser: Any, decided: bool = False,
                  changes: dict[str, Any] | None = None, **web: Any) -> Cockpit:
    """Start the service with its cockpit on a free port, a case open (and decided).

    changes are other config sections to override (the mailbox, the business manager).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = build_config(tmp_path, closure_dates=[],
                          web={"port": port, "base_url": url, **web},
                          service={"health_port": 0, "sweep_seconds": 1}, **(changes or {}))
    clock = SimulatedClock(MONDAY)
    service = Service(config, clock=clock)
    with transaction(service.engine.database) as session:
        open_case(session, config, REFERRAL, REFERRAL, actor="test")
        if decided:
            case = find_case(session, REFERENCE)
            for status in ("awaiting_decision", "rapid_review"):
                if status in TRANSITIONS[case.status]:
                    transition(session, case, status, "test", MONDAY)
            publish("case_decided", session, config, case, MONDAY, decision="rapid_review")
    service.start()
    return Cockpit(service, clock, url, tmp_path, browser)


@pytest.fixture
def cockpit(tmp_path: Path, browser: Any) -> Iterator[Cockpit]:
    running = start_cockpit(tmp_path, browser)
    yield running
    running.service.stop()


@pytest.fixture
def decided(tmp_path: Path, browser: Any) -> Iterator[Cockpit]:
    running = start_cockpit(tmp_path, browser, decided=True)
    yield running
    running.service.stop()


def rows(cockpit: Cockpit, model: Any, *where: Any) -> list[Any]:
    with transaction(cockpit.database()) as session:
        return list(session.exec(select(model).where(*where)))
