"""Contract harness for MaildirMailbox: Maildir folders in the test's temporary directory."""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

import pytest

from bot.adapters.mail.maildir import MaildirMailbox

NAME = "maildir"


class MaildirHarness:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.mailbox = MaildirMailbox(root, name="bot@partnership.test")
        self._count = 0

    def deliver(self, raw: bytes) -> None:
        """Write into inbox/tmp, then rename into inbox/new, as an MTA does."""
        inbox = self.root / "inbox"
        for sub in ("tmp", "new", "cur"):
            (inbox / sub).mkdir(parents=True, exist_ok=True)
        self._count += 1
        unique = f"{os.getpid()}.test{self._count}.harness"
        (inbox / "tmp" / unique).write_bytes(raw)
        os.rename(inbox / "tmp" / unique, inbox / "new" / unique)

    def _ids(self, folder: str) -> list[str]:
        path = self.root / folder
        if not path.exists():
            return []
        store = mailbox.Maildir(str(path), factory=None, create=False)
        parser = BytesHeaderParser(policy=default)
        return [
            str(parser.parsebytes(store.get_bytes(key))["Message-ID"]).strip()
            for key in store.keys()
        ]

    def sent_message_ids(self) -> list[str]:
        return self._ids("sent")

    def folder_message_ids(self, folder: str) -> list[str]:
        return self._ids(folder.lower())

    def inbox_message_ids(self) -> list[str]:
        return self._ids("inbox")


def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MaildirHarness]:
    built = MaildirHarness(tmp_path / "mail")
    try:
        yield built
    finally:
        built.mailbox.close()
