"""One contract suite for every mail backend: each harness_*.py module beside it is run."""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from email.utils import make_msgid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bot.kernel.mailbox import FetchedMail, Mailbox, MessageNotFound, Refiling
from tests.adapters.mail.harness import MailboxHarness, make_message, same_message

BOT = "bot@partnership.test"
SENDER = "duty.manager@council.test"


def _discover() -> list[tuple[str, Callable[..., Iterator[MailboxHarness]]]]:
    """Import every harness module beside this file; a broken one fails only its own tests."""
    found: list[tuple[str, Callable[..., Iterator[MailboxHarness]]]] = []
    folder = Path(__file__).parent
    for module_info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if not module_info.name.startswith("harness_"):
            continue
        try:
            module: ModuleType = importlib.import_module(f"tests.adapters.mail.{module_info.name}")
        except Exception as error:  # noqa: BLE001
            found.append((module_info.name, _broken(module_info.name, error)))
            continue
        found.append((str(module.NAME), module.harness))
    return found


def _broken(name: str, error: Exception) -> Callable[..., Iterator[MailboxHarness]]:
    """Return a harness factory that fails, saying why the module could not be imported."""

    def factory(request: Any, tmp_path: Path) -> Iterator[MailboxHarness]:
        pytest.fail(f"harness module {name} could not be imported: {error!r}")
        yield  # pragma: no cover

    return factory


HARNESSES = _discover()


@pytest.fixture(params=[factory for _, factory in HARNESSES], ids=[name for name, _ in HARNESSES])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailboxHarness]:
    yield from request.param(request, tmp_path)


def fetch_all(mailbox: Mailbox) -> list[FetchedMail]:
    return list(mailbox.fetch_new())


def message_id_of(raw: bytes) -> str:
    return str(BytesParser(policy=default).parsebytes(raw, headersonly=True)["Message-ID"]).strip()


def fetch_until(mailbox: Mailbox, wanted: set[str], timeout: float = 5.0) -> list[FetchedMail]:
    """Fetch until every wanted Message-ID is there (delivery may take a moment), or give up."""
    deadline = time.monotonic() + timeout
    while True:
        fetched = fetch_all(mailbox)
        if wanted <= {message_id_of(mail.raw) for mail in fetched}:
            return fetched
        if time.monotonic() > deadline:
            return fetched
        time.sleep(0.05)  # real-time ok


def by_message_id(fetched: list[FetchedMail]) -> dict[str, FetchedMail]:
    return {message_id_of(mail.raw): mail for mail in fetched}


def outgoing(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = BOT
    message["To"] = BOT
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="partnership.test")
    message.set_content("Rapid Review meeting invitation.\n")
    return message


def test_adapter_implements_the_mailbox_protocol(harness: MailboxHarness) -> None:
    assert isinstance(harness.mailbox, Mailbox)
    assert isinstance(harness.mailbox.name, str) and harness.mailbox.name


def test_delivered_message_is_fetched_with_its_bytes_intact(harness: MailboxHarness) -> None:
    raw = make_message("Notification: child A", SENDER, BOT)
    harness.deliver(raw)

    fetched = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))

    assert message_id_of(raw) in fetched
    assert same_message(fetched[message_id_of(raw)].raw, raw)


def test_a_delivered_message_says_when_it_arrived(harness: MailboxHarness) -> None:
    # Given a message delivered now (servers keep arrival times to the second),
    before = datetime.now(UTC).replace(microsecond=0)
    raw = make_message("Notification: child B", SENDER, BOT)
    harness.deliver(raw)
    # when it is fetched,
    fetched = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))
    after = datetime.now(UTC)
    # then it carries a timezone-aware arrival time, within a minute of the delivery.
    arrived_at = fetched[message_id_of(raw)].arrived_at
    assert arrived_at is not None
    assert arrived_at.utcoffset() is not None
    assert before - timedelta(minutes=1) <= arrived_at <= after + timedelta(minutes=1)


def test_every_delivered_message_is_fetched(harness: MailboxHarness) -> None:
    raws = [make_message(f"Notification {n}", SENDER, BOT) for n in range(3)]
    for raw in raws:
        harness.deliver(raw)

    fetched = fetch_until(harness.mailbox, {message_id_of(raw) for raw in raws})

    assert {message_id_of(raw) for raw in raws} <= set(by_message_id(fetched))
    assert len({mail.server_id for mail in fetched}) == len(fetched)


def test_fetch_is_at_least_once_until_marked_processed(harness: MailboxHarness) -> None:
    raw = make_message("Notification: child B", SENDER, BOT)
    harness.deliver(raw)
    first = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))

    second = by_message_id(fetch_all(harness.mailbox))

    assert message_id_of(raw) in first
    assert message_id_of(raw) in second


def test_server_ids_are_stable_between_fetches(harness: MailboxHarness) -> None:
    raws = [make_message(f"Stable {n}", SENDER, BOT) for n in range(2)]
    for raw in raws:
        harness.deliver(raw)
    first = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw) for raw in raws}))

    second = by_message_id(fetch_all(harness.mailbox))

    assert {key: mail.server_id for key, mail in first.items()} == {
        key: mail.server_id for key, mail in second.items()
    }


def test_mark_processed_moves_the_message_out_of_the_inbox(harness: MailboxHarness) -> None:
    keep = make_message("Still to do", SENDER, BOT)
    done = make_message("Done", SENDER, BOT)
    suspicious = make_message("Suspicious", SENDER, BOT)
    for raw in (keep, done, suspicious):
        harness.deliver(raw)
    fetched = by_message_id(
        fetch_until(harness.mailbox, {message_id_of(raw) for raw in (keep, done, suspicious)})
    )

    harness.mailbox.mark_processed(fetched[message_id_of(done)].server_id, "Processed")
    harness.mailbox.mark_processed(fetched[message_id_of(suspicious)].server_id, "Quarantine")

    assert message_id_of(done) in harness.folder_message_ids("Processed")
    assert message_id_of(suspicious) in harness.folder_message_ids("Quarantine")
    assert set(harness.inbox_message_ids()) == {message_id_of(keep)}
    assert set(by_message_id(fetch_all(harness.mailbox))) == {message_id_of(keep)}


def test_mark_processed_twice_is_harmless(harness: MailboxHarness) -> None:
    raw = make_message("Processed twice after a crash", SENDER, BOT)
    harness.deliver(raw)
    mail = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))[message_id_of(raw)]

    harness.mailbox.mark_processed(mail.server_id, "Processed")
    harness.mailbox.mark_processed(mail.server_id, "Processed")

    assert harness.folder_message_ids("Processed").count(message_id_of(raw)) == 1
    assert message_id_of(raw) not in harness.inbox_message_ids()


def test_send_keeps_a_copy_in_sent_that_find_sent_finds(harness: MailboxHarness) -> None:
    message = outgoing("Rapid Review meeting")
    message_id = str(message["Message-ID"])

    harness.mailbox.send(message)

    assert message_id in harness.sent_message_ids()
    assert harness.mailbox.find_sent(message_id)
    assert not harness.mailbox.find_sent(make_msgid(domain="partnership.test"))


def test_find_sent_does_not_match_a_message_id_that_merely_contains_another(
    harness: MailboxHarness,
) -> None:
    message = outgoing("Exact match only")
    message_id = str(message["Message-ID"])
    harness.mailbox.send(message)

    assert not harness.mailbox.find_sent(message_id.replace("<", "<x", 1))
    assert not harness.mailbox.find_sent(message_id[:-1] + "x>")


def test_utf8_8bit_message_round_trips(harness: MailboxHarness) -> None:
    body = "Réunion à 10h – Ünïcödé text, £20, “quotes”, 子供.\n"
    message = EmailMessage(policy=default)
    message["From"] = "Zoë Brontë <zoe@council.test>"
    message["To"] = BOT
    message["Subject"] = "Notification – enfant Ç"
    message["Message-ID"] = make_msgid(domain="outside.test")
    message.set_content(body, cte="8bit")
    raw = message.as_bytes(policy=default.clone(linesep="\r\n"))
    assert b"\xc3\xa9" in raw
    harness.deliver(raw)

    fetched = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))

    got = fetched[message_id_of(raw)].raw
    assert same_message(got, raw)
    parsed = BytesParser(policy=default).parsebytes(got)
    assert str(parsed["Subject"]) == "Notification – enfant Ç"
    assert parsed.get_content() == body.replace("\n", "\r\n") or parsed.get_content() == body


def test_wait_for_mail_returns_within_its_timeout(harness: MailboxHarness) -> None:
    fetch_all(harness.mailbox)
    started = time.monotonic()

    result = harness.mailbox.wait_for_mail(0.3)  # real-time ok

    assert isinstance(result, bool)
    assert time.monotonic() - started < 0.3 + 2.0


def test_close_then_use_again(harness: MailboxHarness) -> None:
    raw = make_message("After close", SENDER, BOT)
    harness.deliver(raw)
    fetch_until(harness.mailbox, {message_id_of(raw)})

    harness.mailbox.close()

    assert message_id_of(raw) in by_message_id(fetch_all(harness.mailbox))


def test_check_returns_lines(harness: MailboxHarness) -> None:
    lines = harness.mailbox.check()

    assert lines and all(isinstance(line, str) and "\n" not in line for line in lines)


def filed_in(harness: MailboxHarness, subject: str, folder: str) -> tuple[FetchedMail, str]:
    """Deliver a message, fetch it and file it in folder as the engine does; give it back."""
    raw = make_message(subject, SENDER, BOT)
    harness.deliver(raw)
    mail = by_message_id(fetch_until(harness.mailbox, {message_id_of(raw)}))[message_id_of(raw)]
    harness.mailbox.mark_processed(mail.server_id, folder)
    return mail, message_id_of(raw)


def test_refile_moves_a_released_message_from_quarantine_to_processed_once(
    harness: MailboxHarness,
) -> None:
    # Given a message the engine filed in Quarantine, and another left there,
    mail, message_id = filed_in(harness, "Held referral", "Quarantine")
    _other, other_id = filed_in(harness, "Still held", "Quarantine")
    assert isinstance(harness.mailbox, Refiling)
    # when it is refiled to Processed twice (as after a crash between the move and its record),
    harness.mailbox.refile(mail.server_id, message_id, "Quarantine", "Processed")
    harness.mailbox.refile(mail.server_id, message_id, "Quarantine", "Processed")
    # then its one copy is in Processed, and only the other is left in Quarantine.
    assert harness.folder_message_ids("Processed") == [message_id]
    assert harness.folder_message_ids("Quarantine") == [other_id]


def test_refile_of_a_message_moved_elsewhere_by_hand_says_it_is_not_found(
    harness: MailboxHarness,
) -> None:
    # Given a message someone moved by hand out of Quarantine into a folder of their own,
    mail, message_id = filed_in(harness, "Moved by hand", "Reviewed")
    assert isinstance(harness.mailbox, Refiling)
    # when it is refiled, before and after Quarantine and Processed exist,
    with pytest.raises(MessageNotFound):
        harness.mailbox.refile(mail.server_id, message_id, "Quarantine", "Processed")
    filed_in(harness, "Something else", "Quarantine")
    filed_in(harness, "Something done", "Processed")
    with pytest.raises(MessageNotFound):
        harness.mailbox.refile(mail.server_id, message_id, "Quarantine", "Processed")
    # then it is left where it is.
    assert harness.folder_message_ids("Reviewed") == [message_id]
