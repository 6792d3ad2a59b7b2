"""The embedded default mailbox: Maildir folders on disk, where sending means filing in Sent."""

from __future__ import annotations

import itertools
import logging
import mailbox
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

from bot.adapters.mail.polling import poll_until
from bot.kernel.mailbox import FetchedMail, MailboxError, MessageNotFound
from bot.kernel.outgoing import OutgoingMail, from_message

log = logging.getLogger(__name__)

# The Maildir the partnership's incoming mail is written into.
INBOX_FOLDER = "inbox"

# The Maildir that sent messages are filed in.
SENT_FOLDER = "sent"

# How often wait_for_mail looks at the inbox for new files.
POLL_INTERVAL_SECONDS = 0.1

# A folder name becomes a directory name, so it may only use plain characters.
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")

# Maildir keys are file names without the ":2,FLAGS" info suffix.
_KEY = re.compile(r"^[^/:]+$")

# The delivery time (seconds since the epoch) a Maildir file name starts with, "<time>.<unique>".
_DELIVERY_SECONDS = re.compile(r"^(\d{1,12})\.")

# A name's leading number before 2001 is not a delivery time (it may be a process id, say).
_EARLIEST_DELIVERY = datetime(2001, 1, 1, tzinfo=UTC).timestamp()

# How far a name's delivery time may be after the file's mtime (clock skew between writers).
_DELIVERY_SLACK_SECONDS = 24 * 60 * 60


class MaildirMailbox:
    """A partnership mailbox kept as Maildir folders under one directory.

    <path>/inbox receives mail (from an MTA, a script, or a test); mark_processed moves a
    message into a sibling Maildir named after the folder in lower case (processed,
    quarantine); send() files the message in <path>/sent, which is all "sending" means here.
    The server id of a message is its Maildir key, which stays the same when it moves.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name
        # Inbox file names seen by the last fetch, so wait_for_mail can tell what is new.
        self._seen_in_new: set[str] = set()
        # Message-IDs of files already read in Sent; Maildir files never change once written.
        self._sent_ids: dict[str, str] = {}
        self._counter = itertools.count()

    def _maildir(self, folder: str) -> mailbox.Maildir:
        """Open (creating if needed) the Maildir for a folder name."""
        try:
            # A crash can leave a folder half-made (sent/ without cur/): complete it, as the
            # standard library only makes the three directories of a folder that is not there.
            for subdir in ("tmp", "new", "cur"):
                (self.path / folder / subdir).mkdir(parents=True, exist_ok=True)
            return mailbox.Maildir(str(self.path / folder), factory=None, create=True)
        except OSError as error:
            raise MailboxError(
                f"Maildir {self.path / folder} cannot be opened or created: {error.strerror}"
            ) from error

    def _folder_dir(self, folder: str) -> str:
        """Return the directory name for a folder the engine names (Processed -> processed)."""
        if not _FOLDER_NAME.match(folder):
            raise MailboxError(f"folder name {folder!r} cannot be used as a Maildir folder")
        return folder.lower()

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox, read or not, until it is marked processed."""
        inbox = self._maildir(INBOX_FOLDER)
        self._seen_in_new = self._names_in_new()
        files = self._files_by_key(INBOX_FOLDER)
        for key in sorted(inbox.keys()):
            try:
                raw = inbox.get_bytes(key)
            except (KeyError, FileNotFoundError):
                # Another process moved the file between listing and reading; it is not ours.
                log.debug("Maildir message %s vanished before it could be read", key)
                continue
            yield FetchedMail(server_id=key, raw=raw, arrived_at=_delivered_at(key, files.get(key)))

    def _files_by_key(self, folder: str) -> dict[str, Path]:
        """Return the file holding each message in a folder, by Maildir key."""
        files: dict[str, Path] = {}
        for subdir in ("new", "cur"):
            directory = self.path / folder / subdir
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                files[name.partition(":")[0]] = directory / name
        return files

    def _names_in_new(self) -> set[str]:
        """Return the file names in the inbox's new/ directory."""
        try:
            return set(os.listdir(self.path / INBOX_FOLDER / "new"))
        except FileNotFoundError:
            return set()

    def _find_file(self, folder: str, key: str) -> Path | None:
        """Return the file holding the message with this key in a folder, if it is there."""
        return self._files_by_key(folder).get(key)

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move the message out of the inbox into the named folder's Maildir."""
        self._move(server_id, INBOX_FOLDER, self._folder_dir(folder), "the inbox")

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move a message the engine filed in source (Quarantine) on to target (Processed)."""
        origin = self._folder_dir(source)
        self._move(server_id, origin, self._folder_dir(target), f"the {origin} folder")

    def _move(self, server_id: str, origin: str, target_folder: str, where: str) -> None:
        if not _KEY.match(server_id):
            raise MailboxError(f"{server_id!r} is not a Maildir message key")
        # Creating the target also makes sure its cur/ directory exists for the rename.
        self._maildir(target_folder)
        source = self._find_file(origin, server_id)
        if source is None:
            # Moving twice is harmless: an earlier call (perhaps before a crash) did it.
            if self._find_file(target_folder, server_id) is not None:
                return
            raise MessageNotFound(
                f"message {server_id} is no longer in {where} at {self.path / origin}"
            )
        # Keep the file name (key and flags) so the server id stays the same in the new folder.
        target = self.path / target_folder / source.parent.name / source.name
        try:
            os.rename(source, target)
        except FileNotFoundError:
            # A concurrent move won the race; it is harmless if the message arrived there.
            if self._find_file(target_folder, server_id) is None:
                raise MailboxError(
                    f"message {server_id} vanished from {where} while being moved"
                ) from None
        log.debug("Moved Maildir message %s to %s", server_id, target_folder)

    def send(self, message: EmailMessage) -> None:
        """File a message in the sent Maildir (see send_raw)."""
        self.send_raw(from_message(message))

    def send_raw(self, mail: OutgoingMail) -> None:
        """File the message in the sent Maildir, durably, as this mailbox's way of sending."""
        message_id, raw = mail.message_id, mail.raw
        self._maildir(SENT_FOLDER)
        sent_dir = self.path / SENT_FOLDER
        unique = (
            f"{time.time_ns()}.P{os.getpid()}Q{next(self._counter)}."
            f"{socket.gethostname().replace('/', '_').replace(':', '_')}"
        )
        staging = sent_dir / "tmp" / unique
        # Write into tmp/, flush to disk, then rename into cur/ so readers never see half.
        with open(staging, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(staging, sent_dir / "cur" / f"{unique}:2,S")
        directory = os.open(sent_dir / "cur", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        log.debug("Filed sent message %s in %s", message_id, sent_dir)

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in the sent Maildir."""
        wanted = message_id.strip()
        sent = self._maildir(SENT_FOLDER)
        parser = BytesHeaderParser(policy=default)
        for key in sent.keys():
            known = self._sent_ids.get(key)
            if known is None:
                try:
                    with sent.get_file(key) as handle:
                        headers = parser.parse(handle)  # type: ignore[arg-type]
                except (KeyError, FileNotFoundError):
                    continue
                known = str(headers.get("Message-ID", "")).strip()
                self._sent_ids[key] = known
            if known == wanted:
                return True
        return False

    def wait_for_mail(self, timeout: float) -> bool:
        """Poll the inbox's new/ directory until a file not seen at the last fetch appears."""
        return poll_until(
            lambda: bool(self._names_in_new() - self._seen_in_new),
            max(timeout, 0.0),
            POLL_INTERVAL_SECONDS,
        )

    def check(self) -> list[str]:
        """Create the folders if needed and return one line per folder with its message count."""
        if self.path.exists() and not self.path.is_dir():
            raise MailboxError(f"Maildir root {self.path} exists but is not a directory")
        lines: list[str] = []
        for folder in (INBOX_FOLDER, "processed", "quarantine", SENT_FOLDER):
            existed = (self.path / folder).is_dir()
            maildir = self._maildir(folder)
            if not os.access(self.path / folder / "new", os.W_OK):
                raise MailboxError(f"Maildir {self.path / folder} is not writable by this user")
            state = "exists" if existed else "created"
            lines.append(f"{folder}: {state} at {self.path / folder} ({len(maildir)} messages)")
        return lines

    def close(self) -> None:
        """Nothing to release: every call opens the Maildir afresh."""


def _delivered_at(key: str, path: Path | None) -> datetime | None:
    """Return when a message was delivered: the time its name starts with, else its mtime."""
    try:
        modified: float | None = os.stat(path).st_mtime if path is not None else None
    except FileNotFoundError:
        modified = None
    match = _DELIVERY_SECONDS.match(key)
    if match is not None:
        seconds = int(match.group(1))
        # A leading number that cannot be the delivery time (a process id, nanoseconds) is not.
        latest = (modified if modified is not None else time.time()) + _DELIVERY_SLACK_SECONDS
        if _EARLIEST_DELIVERY <= seconds <= latest:
            return datetime.fromtimestamp(seconds, tz=UTC)
    if modified is None:
        return None
    return datetime.fromtimestamp(modified, tz=UTC)
