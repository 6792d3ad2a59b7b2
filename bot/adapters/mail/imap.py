"""The partnership's mail over IMAP: fetching, waiting with IDLE, moving, and the Sent folder."""

from __future__ import annotations

import functools
import imaplib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from bot.adapters.mail.imap_session import FolderMissing, ImapEndpoint, ImapSession
from bot.adapters.mail.imap_wire import fetched_with_dates, first_text, idle, uids_in
from bot.adapters.mail.mail_server import Login
from bot.adapters.mail.polling import poll_until
from bot.kernel.mailbox import (
    FetchedMail,
    MailboxError,
    MessageNotFound,
    TransientMailboxError,
)

log = logging.getLogger(__name__)

# RFC 2177 asks clients to leave and re-enter IDLE at least every 29 minutes.
IDLE_RESTART_SECONDS = 25 * 60


@dataclass(frozen=True)
class ImapFolders:
    """The folders the bot uses on the IMAP server, by the names the partnership gave them."""

    inbox: str = "INBOX"
    sent: str = "Sent"
    # The folders fetched messages are moved into; check() says whether each exists yet.
    filing: tuple[str, ...] = ("Processed", "Quarantine")


class ImapReader:
    """The partnership mailbox on any IMAP server, for everything but sending.

    Every message in the inbox is fetched with BODY.PEEK[] (its read flag is never touched)
    until mark_processed moves it; server ids are "UIDVALIDITY:UID". Copies of sent messages
    are filed in Sent here. One instance is meant to be used from one thread.
    """

    def __init__(
        self,
        endpoint: ImapEndpoint,
        login: Login,
        folders: ImapFolders | None = None,
        *,
        use_idle: bool = True,
        poll_seconds: float = 60.0,
        fetch_batch: int = 25,
    ) -> None:
        self.session = ImapSession(endpoint, login)
        self.folders = folders or ImapFolders()
        self.use_idle = use_idle
        self.poll_seconds = poll_seconds
        self.fetch_batch = max(1, fetch_batch)
        # The inbox's UIDVALIDITY and highest UID at the last fetch, to tell what is new.
        self._last_fetch: tuple[int, int] | None = None
        # Message-IDs of fetched messages by server id, to move one after a renumbering.
        self._message_ids: dict[str, str] = {}
        # UIDs flagged \Deleted on a server without UIDPLUS, which must not be fetched again.
        self._moved_without_expunge: set[tuple[int, int]] = set()
        # Sent messages whose copy could not yet be filed in Sent: (Message-ID, bytes).
        self._pending_sent: list[tuple[str, bytes]] = []

    @property
    def _where(self) -> str:
        return self.session.endpoint.where

    # Fetching.

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox by UID, read or unread, without marking it read."""
        self._file_pending_sent_quietly()
        validity, uids = self.session.run("search the inbox", self._search_inbox)
        for start in range(0, len(uids), self.fetch_batch):
            chunk = uids[start : start + self.fetch_batch]
            yield from self.session.run(
                "fetch messages from the inbox",
                functools.partial(self._fetch_chunk, validity=validity, uids=chunk),
            )

    def _search_inbox(self, connection: imaplib.IMAP4) -> tuple[int, list[int]]:
        """Return the inbox's UIDVALIDITY and the UIDs of every message in it."""
        validity = self._select_inbox(connection, refresh=True)
        connection.untagged_responses.pop("SEARCH", None)
        typ, reply = connection.uid("SEARCH", "ALL")
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._where} refused to search the inbox: {first_text(reply)}"
            )
        uids = sorted(uids_in(reply))
        self._last_fetch = (validity, max(uids, default=0))
        return validity, [uid for uid in uids if (validity, uid) not in self._moved_without_expunge]

    def _select_inbox(self, connection: imaplib.IMAP4, refresh: bool = False) -> int:
        """Select the inbox for reading and moving; return its UIDVALIDITY.

        With refresh, an inbox that was already selected is brought up to date with NOOP:
        servers only take in newly delivered mail at such sync points, not during SEARCH.
        """
        inbox = self.folders.inbox
        if refresh and self.session.is_selected(inbox):
            connection.noop()
        try:
            return self.session.select(connection, inbox)
        except FolderMissing as missing:
            raise MailboxError(
                f"IMAP server {self._where} has no folder {inbox} for user "
                f"{self.session.login.username}: {missing}"
            ) from None

    def _fetch_chunk(
        self, connection: imaplib.IMAP4, validity: int, uids: list[int]
    ) -> list[FetchedMail]:
        """Fetch some messages' full bytes with BODY.PEEK[], leaving their flags alone."""
        current = self._select_inbox(connection)
        if current != validity:
            raise TransientMailboxError(
                f"the inbox on {self._where} was renumbered (UIDVALIDITY changed) during a"
                f" fetch; fetch again"
            )
        connection.untagged_responses.pop("FETCH", None)
        typ, reply = connection.uid(
            "FETCH", ",".join(map(str, uids)), "(UID INTERNALDATE BODY.PEEK[])"
        )
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._where} refused to fetch messages: {first_text(reply)}"
            )
        found = fetched_with_dates(reply)
        fetched: list[FetchedMail] = []
        for uid in uids:
            if uid not in found:
                # The message was moved or expunged by someone else since the search.
                continue
            raw, arrived_at = found[uid]
            server_id = f"{validity}:{uid}"
            self._remember_message_id(server_id, raw)
            fetched.append(FetchedMail(server_id=server_id, raw=raw, arrived_at=arrived_at))
        log.debug("Fetched %d of %d messages from %s", len(fetched), len(uids), self.folders.inbox)
        return fetched

    def _remember_message_id(self, server_id: str, raw: bytes) -> None:
        """Keep a fetched message's Message-ID, to find it again if the inbox is renumbered."""
        if len(self._message_ids) > 50_000:
            self._message_ids.clear()
        header_end = raw.find(b"\r\n\r\n")
        headers = BytesHeaderParser(policy=default_policy).parsebytes(
            raw if header_end < 0 else raw[: header_end + 4]
        )
        message_id = str(headers.get("Message-ID", "")).strip()
        if message_id:
            self._message_ids[server_id] = message_id

    # Filing.

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move the message into folder (UID MOVE, or COPY and flag where MOVE is missing)."""
        validity_text, _, uid_text = server_id.partition(":")
        if not (validity_text.isdigit() and uid_text.isdigit()):
            raise MailboxError(f"{server_id!r} is not an IMAP server id (UIDVALIDITY:UID)")
        validity, uid = int(validity_text), int(uid_text)

        def move(connection: imaplib.IMAP4) -> None:
            current = self._select_inbox(connection)
            uids = [uid]
            if current != validity:
                uids = self._find_renumbered(connection, server_id, current)
            if not uids:
                return
            self.session.ensure_folder(connection, folder)
            self._move(connection, current, uids, folder)

        self.session.run(f"move a message to {folder}", move)

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move a message the engine filed in source (Quarantine) on to target, by Message-ID."""
        if not message_id:
            raise MessageNotFound(f"message {server_id} has no Message-ID to find it by in "
                                  f"{source}")

        def move(connection: imaplib.IMAP4) -> None:
            uids = self._search_folder(connection, source, message_id)
            if uids:
                validity = self.session.select(connection, source)
                self.session.ensure_folder(connection, target)
                self._move(connection, validity, uids, target)
            elif not self._search_folder(connection, target, message_id):
                raise MessageNotFound(f"message {message_id} is in neither {source} nor "
                                      f"{target} on {self._where}")

        self.session.run(f"move a message from {source} to {target}", move)

    def _search_folder(self, connection: imaplib.IMAP4, folder: str, message_id: str) -> list[int]:
        try:
            self.session.select(connection, folder)
        except FolderMissing:
            return []
        return self.session.search_message_id(connection, message_id)

    def _find_renumbered(
        self, connection: imaplib.IMAP4, server_id: str, current: int
    ) -> list[int]:
        """Find, by Message-ID, a message whose server id predates an inbox renumbering."""
        message_id = self._message_ids.get(server_id)
        if message_id is None:
            raise MailboxError(
                f"message {server_id} cannot be moved: the inbox on {self._where} was "
                f"renumbered (UIDVALIDITY is now {current}); fetch again for new ids"
            )
        return self.session.search_message_id(connection, message_id)

    def _move(self, connection: imaplib.IMAP4, validity: int, uids: list[int], folder: str) -> None:
        """Move messages out of the selected inbox into folder, never deleting anything."""
        uid_set = ",".join(map(str, uids))
        target = self.session.mailbox_argument(folder)
        capabilities = self.session.capabilities
        if "MOVE" in capabilities:
            typ, reply = connection.uid("MOVE", uid_set, target)
        else:
            typ, reply = connection.uid("COPY", uid_set, target)
            if typ == "OK":
                connection.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
                if "UIDPLUS" in capabilities:
                    connection.uid("EXPUNGE", uid_set)
                else:
                    # Without UIDPLUS an EXPUNGE could remove other clients' deletions too.
                    self._moved_without_expunge.update((validity, uid) for uid in uids)
        if typ != "OK":
            # The folder may have been deleted since we last looked; look again next time.
            self.session.forget_folder(folder)
            raise MailboxError(
                f"IMAP server {self._where} refused to move message(s) {uid_set} to "
                f"{folder}: {first_text(reply)}"
            )
        log.debug("Moved UID(s) %s to %s", uid_set, folder)

    # The Sent folder.

    def keep_sent_copy(self, message_id: str, raw: bytes) -> None:
        """File a sent message's copy in Sent now, or with the next call if the server fails."""
        # The message has gone; remember it until its copy is safely in Sent.
        self._pending_sent.append((message_id, raw))
        self._file_pending_sent_quietly()

    def _file_pending_sent_quietly(self) -> None:
        """File the copies of sent messages in Sent; leave them pending if the server fails."""
        while self._pending_sent:
            message_id, raw = self._pending_sent[0]
            try:
                self.session.run(
                    "file a copy in Sent",
                    functools.partial(self._append_to_sent, message_id=message_id, raw=raw),
                )
            except MailboxError as error:
                log.debug("Copy of %s not yet filed in Sent: %s", message_id, error)
                return
            self._pending_sent.pop(0)

    def _append_to_sent(self, connection: imaplib.IMAP4, message_id: str, raw: bytes) -> None:
        """APPEND a sent message to Sent unless an earlier attempt already put it there."""
        sent = self.folders.sent
        self.session.ensure_folder(connection, sent)
        self.session.select(connection, sent, readonly=True)
        if self.session.search_message_id(connection, message_id):
            return
        typ, reply = connection.append(
            self.session.mailbox_argument(sent),
            r"(\Seen)",
            imaplib.Time2Internaldate(time.time()),
            raw,
        )
        if typ != "OK":
            raise MailboxError(
                f"IMAP server {self._where} refused to file a copy in {sent}: {first_text(reply)}"
            )
        log.debug("Filed a copy of %s in %s", message_id, sent)

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in Sent (or about to be filed there)."""
        wanted = message_id.strip()
        self._file_pending_sent_quietly()
        if any(pending_id == wanted for pending_id, _ in self._pending_sent):
            return True

        def search(connection: imaplib.IMAP4) -> bool:
            try:
                self.session.select(connection, self.folders.sent, readonly=True)
            except FolderMissing:
                return False
            return bool(self.session.search_message_id(connection, wanted))

        return self.session.run(f"search {self.folders.sent}", search)

    # Waiting.

    def wait_for_mail(self, timeout: float) -> bool:
        """Wait with IDLE when the server has it (else poll) until new mail or timeout."""
        deadline = time.monotonic() + max(timeout, 0.0)
        self._file_pending_sent_quietly()
        return self.session.run(
            "wait for new mail", lambda connection: self._wait(connection, deadline)
        )

    def _has_new_mail(self, connection: imaplib.IMAP4) -> bool:
        """Say whether the inbox holds a message with a UID above the last fetch's highest."""
        validity = self._select_inbox(connection, refresh=True)
        if self._last_fetch is None or self._last_fetch[0] != validity:
            typ, reply = connection.uid("SEARCH", "ALL")
            return typ == "OK" and any(line for line in reply if isinstance(line, bytes))
        highest = self._last_fetch[1]
        connection.untagged_responses.pop("SEARCH", None)
        typ, reply = connection.uid("SEARCH", "UID", f"{highest + 1}:*")
        # "N:*" always includes the highest UID, even when it is below N.
        return typ == "OK" and any(uid > highest for uid in uids_in(reply))

    def _wait(self, connection: imaplib.IMAP4, deadline: float) -> bool:
        """Return True once the inbox has new mail, or False at the deadline."""
        if self._has_new_mail(connection):
            return True
        if self.use_idle and "IDLE" in self.session.capabilities:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return False
                tag = self.session.next_tag()
                if idle(connection, tag, min(deadline, now + IDLE_RESTART_SECONDS)):
                    return True
        return poll_until(
            lambda: self._has_new_mail(connection),
            deadline - time.monotonic(),
            self.poll_seconds,
            look_first=False,
        )

    # Checking and closing.

    def check(self) -> list[str]:
        """Log in and return a line on the server, then one per folder the bot uses."""
        lines: list[str] = []
        session = self.session
        endpoint, username = session.endpoint, session.login.username

        def inspect(connection: imaplib.IMAP4) -> None:
            extras = [name for name in ("IDLE", "MOVE", "UIDPLUS") if name in session.capabilities]
            lines.append(
                f"IMAP {endpoint.where} ({endpoint.security}): logged in as {username};"
                f" server offers {', '.join(extras) or 'none of IDLE, MOVE, UIDPLUS'}"
            )
            folders = self.folders
            for folder in (folders.inbox, *folders.filing, folders.sent):
                full = session.full_name(folder)
                typ, reply = connection.status(session.mailbox_argument(folder), "(MESSAGES)")
                if typ == "OK":
                    counted = re.search(rb"MESSAGES (\d+)", reply[0] if reply and reply[0] else b"")
                    count = counted.group(1).decode() if counted else "?"
                    lines.append(f"{full}: exists ({count} messages)")
                elif folder == folders.inbox:
                    raise MailboxError(
                        f"IMAP server {endpoint.where} has no folder {full} for "
                        f"{username}: {first_text(reply)}"
                    )
                else:
                    lines.append(f"{full}: missing (it will be created when first needed)")

        session.run("list folders", inspect)
        return lines

    def close(self) -> None:
        """File any pending Sent copies, log out and drop the connection; reuse reconnects."""
        self._file_pending_sent_quietly()
        self.session.log_out()
