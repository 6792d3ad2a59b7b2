"""A mailbox that records what it sends in an append-only file, durable across SIGKILL."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

from bot.kernel.mailbox import FetchedMail, TransientMailboxError
from bot.kernel.outgoing import OutgoingMail


class RecordingMailbox:
    """Implements bot.kernel.mailbox.Mailbox; every send is one fsynced JSON line in a file.

    Several processes may share one file: each line is written with a single O_APPEND write.
    `fail_next` makes the next sends raise TransientMailboxError (with a Retry-After).
    """

    def __init__(self, path: Path, name: str = "rapidreview@exampleshire.example") -> None:
        self.path = Path(path)
        self.name = name
        self.inbox: list[FetchedMail] = []
        self.moved: list[tuple[str, str]] = []
        self.fail_next = 0
        self.retry_after: float | None = 120.0

    def fetch_new(self) -> Iterator[FetchedMail]:
        moved = {server_id for server_id, _folder in self.moved}
        yield from [mail for mail in self.inbox if mail.server_id not in moved]

    def mark_processed(self, server_id: str, folder: str) -> None:
        self.moved.append((server_id, folder))

    def send(self, message: EmailMessage) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise TransientMailboxError("server busy", retry_after=self.retry_after)
        line = json.dumps({
            "message_id": str(message["Message-ID"]), "to": str(message["To"]),
            "subject": str(message["Subject"]), "date": str(message["Date"]),
            "pid": os.getpid(),
        }) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def send_raw(self, mail: OutgoingMail) -> None:
        # The recording reads the headers, so the bytes the engine sends are parsed here.
        self.send(mail.message())

    def find_sent(self, message_id: str) -> bool:
        return any(record["message_id"] == message_id for record in self.records())

    def wait_for_mail(self, timeout: float) -> bool:
        return False

    def check(self) -> list[str]:
        return [f"recording to {self.path}"]

    def close(self) -> None:
        return None

    def records(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        # A line cut short by SIGKILL mid-write would not parse; none is expected.
        return [json.loads(line) for line in lines if line.strip()]

    def send_counts(self) -> Counter[str]:
        return Counter(record["message_id"] for record in self.records())


class RecordingChat:
    """Implements bot.kernel.chat.ChatChannel; every operation is one fsynced JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def post_ballot(self, view: object, key: str) -> str:
        self._append({"operation": "post_ballot", "key": key})
        return f"ts-{key}"

    def update_ballot(self, reference: str, view: object) -> None:
        self._append({"operation": "update_ballot", "reference": reference})

    def find_posted(self, key: str) -> str | None:
        posted = any(r.get("key") == key for r in self.records()
                     if r["operation"] == "post_ballot")
        return f"ts-{key}" if posted else None

    def post_ephemeral(self, user_id: str, text: str) -> None:
        self._append({"operation": "ephemeral", "user_id": user_id})

    def send_direct(self, user_id: str, text: str) -> None:
        self._append({"operation": "direct", "user_id": user_id})

    def post_notice(self, text: str) -> None:
        self._append({"operation": "notice"})

    def check(self) -> list[str]:
        return [f"recording to {self.path}"]

    def records(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]

    def post_counts(self) -> Counter[str]:
        return Counter(r["key"] for r in self.records() if r["operation"] == "post_ballot")

    def _append(self, record: dict[str, str]) -> None:
        line = json.dumps({**record, "pid": os.getpid()}) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
