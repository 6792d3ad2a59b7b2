"""Maildir-specific behaviour of MaildirMailbox: concurrent writers, vanished files, waiting."""

from __future__ import annotations

import os
import threading
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from unittest import mock

import pytest

from bot.adapters.mail.maildir import MaildirMailbox
from bot.kernel.mailbox import MailboxError
from tests.adapters.mail.harness import make_message
from tests.adapters.mail.harness_maildir import MaildirHarness


@pytest.fixture
def harness(tmp_path: Path) -> MaildirHarness:
    return MaildirHarness(tmp_path / "mail")


def test_a_file_still_being_written_in_tmp_is_not_fetched(harness: MaildirHarness) -> None:
    inbox = harness.root / "inbox"
    list(harness.mailbox.fetch_new())
    (inbox / "tmp" / "half-written").write_bytes(b"Subject: incomplete\r\n")

    assert list(harness.mailbox.fetch_new()) == []


def test_a_file_that_vanishes_between_listing_and_reading_is_skipped(
    harness: MaildirHarness,
) -> None:
    harness.deliver(make_message("Stays", "a@council.test", "bot@partnership.test"))
    harness.deliver(make_message("Goes", "a@council.test", "bot@partnership.test"))
    real_get_bytes = __import__("mailbox").Maildir.get_bytes
    calls = {"n": 0}

    def vanishing(self: object, key: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            raise FileNotFoundError(key)
        return real_get_bytes(self, key)

    with mock.patch("mailbox.Maildir.get_bytes", vanishing):
        fetched = list(harness.mailbox.fetch_new())

    assert len(fetched) == 1


def test_wait_for_mail_wakes_for_a_new_file(harness: MaildirHarness) -> None:
    list(harness.mailbox.fetch_new())
    raw = make_message("Wakes", "a@council.test", "bot@partnership.test")
    delivery = threading.Timer(0.2, harness.deliver, args=(raw,))  # real-time ok
    started = time.monotonic()
    delivery.start()
    woke = harness.mailbox.wait_for_mail(5)
    delivery.join()

    assert woke is True
    assert time.monotonic() - started < 2


def test_server_id_is_the_same_after_the_move(harness: MaildirHarness) -> None:
    harness.deliver(make_message("Moved", "a@council.test", "bot@partnership.test"))
    [mail] = list(harness.mailbox.fetch_new())

    harness.mailbox.mark_processed(mail.server_id, "Processed")

    names = os.listdir(harness.root / "processed" / "new")
    assert [name.split(":")[0] for name in names] == [mail.server_id]


def test_unknown_message_and_bad_folder_name_are_errors(harness: MaildirHarness) -> None:
    harness.deliver(make_message("Here", "a@council.test", "bot@partnership.test"))
    [mail] = list(harness.mailbox.fetch_new())

    with pytest.raises(MailboxError, match="no longer in the inbox"):
        harness.mailbox.mark_processed("no-such-key", "Processed")
    with pytest.raises(MailboxError, match="cannot be used"):
        harness.mailbox.mark_processed(mail.server_id, "../escape")


def test_check_creates_the_folders(tmp_path: Path) -> None:
    mailbox = MaildirMailbox(tmp_path / "fresh", name="bot@partnership.test")

    lines = mailbox.check()

    assert [line.split(":")[0] for line in lines] == ["inbox", "processed", "quarantine", "sent"]
    assert all((tmp_path / "fresh" / folder / "new").is_dir() for folder in ("inbox", "sent"))


def test_a_folder_half_made_by_a_crash_is_completed(tmp_path: Path) -> None:
    # Given a mailbox whose sent/ and processed/ a crash left without cur/ (and tmp/, new/),
    root = tmp_path / "mail"
    (root / "sent" / "tmp").mkdir(parents=True)
    (root / "processed").mkdir()
    (root / "inbox" / "new").mkdir(parents=True)
    mailbox = MaildirMailbox(root, name="bot@partnership.test")
    (root / "inbox" / "new" / "1700000000.P1Q1.host").write_bytes(
        make_message("Here", "a@council.test", "bot@partnership.test"))
    # when the bot sends, looks in Sent and files a message as it does every step,
    outgoing = message_from_bytes(make_message("Out", "bot@partnership.test", "a@council.test",
                                               "<out.1@partnership.test>"), policy=default)
    assert isinstance(outgoing, EmailMessage)
    mailbox.send(outgoing)
    [mail] = list(mailbox.fetch_new())
    mailbox.mark_processed(mail.server_id, "Processed")
    # then each works, the folders are completed, and the message is where it belongs.
    assert mailbox.find_sent("<out.1@partnership.test>")
    assert all((root / folder / subdir).is_dir() for folder in ("inbox", "sent", "processed")
               for subdir in ("tmp", "new", "cur"))
    assert [name.split(":")[0] for name in os.listdir(root / "processed" / "new")] == [
        mail.server_id]
