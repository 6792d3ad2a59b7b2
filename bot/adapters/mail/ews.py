"""Exchange Web Services mailbox adapter for on-premises Exchange, built on exchangelib."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, TypeVar

from bot.adapters.mail.polling import poll_until
from bot.kernel.mailbox import (
    FetchedMail,
    MailboxAuthError,
    MailboxError,
    MessageNotFound,
    TransientMailboxError,
)
from bot.kernel.outgoing import OutgoingMail, from_message

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many items one GetItem request asks for when downloading MIME content.
_FETCH_CHUNK = 10


def _trust_only(ca_file: str) -> None:
    """Make exchangelib verify Exchange's certificate against the council's own authority."""
    import requests.adapters
    from exchangelib.protocol import BaseProtocol

    class CouncilCertificateAdapter(requests.adapters.HTTPAdapter):
        """An HTTP adapter that verifies against ca_file instead of the public authorities."""

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn=conn, url=url, verify=ca_file, cert=cert)

    # exchangelib makes its HTTP sessions with this class, for every account in the process.
    BaseProtocol.HTTP_ADAPTER_CLS = CouncilCertificateAdapter


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Say whether an error, or one it was raised from or during, is of a kind."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _as_utc(value: Any) -> datetime | None:
    """Return an exchangelib date-time as a plain UTC datetime, or None if it has no zone."""
    if not isinstance(value, datetime):
        return None
    offset = value.utcoffset()
    if offset is None:
        return None
    # exchangelib's EWSDateTime only accepts its own zones, so a plain datetime is built.
    plain = datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond, tzinfo=UTC,
    )
    return plain - offset


class EwsMailbox:
    """A shared mailbox on an on-premises Exchange server, reached over EWS.

    The service endpoint, authentication type and server version are configured, so
    exchangelib sends no autodiscover or version-guessing requests. Every fetch lists the
    inbox (FindItem) and downloads MIME content (GetItem), so a message is returned again
    until mark_processed moves it; EWS item ids are stable while an item stays in a folder.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        primary_smtp_address: str,
        username: str | None = None,
        password: str | None = None,
        credentials: Any = None,
        auth_type: str = "NTLM",
        access_type: str = "delegate",
        build: tuple[int, int] = (15, 1),
        name: str | None = None,
        poll_seconds: float = 60.0,
        max_retries: int = 3,
        max_retry_wait: float = 120.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        ca_file: str | None = None,
    ) -> None:
        if credentials is None and username is None:
            raise ValueError("EwsMailbox needs username and password, or credentials")
        self.name = name or primary_smtp_address
        self.primary_smtp_address = primary_smtp_address
        self.poll_seconds = poll_seconds
        self._endpoint = endpoint
        self._username = username
        self._password = password
        self._credentials = credentials
        self._auth_type = auth_type
        self._access_type = access_type
        self._build = build
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._timeout = timeout
        self._sleep = sleep
        self._ca_file = ca_file
        self._lock = threading.RLock()
        self._account: Any = None
        self._folders: dict[str, Any] = {}

    # Connection.

    def _connect(self) -> Any:
        """Return the exchangelib Account, building it on first use or after close()."""
        from exchangelib import Account, Build, Configuration, Credentials, FailFast, Version

        with self._lock:
            if self._account is None:
                if self._ca_file is not None:
                    _trust_only(self._ca_file)
                credentials = self._credentials or Credentials(
                    self._username or "", self._password or ""
                )
                config = Configuration(
                    service_endpoint=self._endpoint,
                    credentials=credentials,
                    auth_type=self._auth_type,
                    version=Version(build=Build(*self._build)),
                    # Fail fast, so that throttling and bad credentials reach our own handling.
                    retry_policy=FailFast(),
                    max_connections=4,
                )
                self._account = Account(
                    primary_smtp_address=self.primary_smtp_address,
                    config=config,
                    autodiscover=False,
                    access_type=self._access_type,
                )
                self._account.protocol.TIMEOUT = self._timeout
            return self._account

    def _call(self, action: str, func: Callable[[Any], T], *, retry: bool = True) -> T:
        """Run func(account), retrying when the server asks us to back off."""
        from exchangelib.errors import (
            ErrorAccessDenied,
            ErrorImpersonateUserDenied,
            ErrorInternalServerTransientError,
            ErrorMailboxStoreUnavailable,
            ErrorNonExistentMailbox,
            ErrorServerBusy,
            ErrorTimeoutExpired,
            RateLimitError,
            TransportError,
            UnauthorizedError,
        )
        from requests.exceptions import RequestException, SSLError

        for attempt in range(self._max_retries + 1):
            try:
                return func(self._connect())
            except UnauthorizedError as exc:
                raise MailboxAuthError(
                    f"{self.name}: Exchange refused the credentials for {self._endpoint} "
                    f"({self._auth_type})"
                ) from exc
            except (ErrorAccessDenied, ErrorImpersonateUserDenied) as exc:
                raise MailboxAuthError(
                    f"{self.name}: no {self._access_type} access to {self.primary_smtp_address}: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from exc
            except ErrorNonExistentMailbox as exc:
                raise MailboxError(
                    f"{self.name}: Exchange has no mailbox {self.primary_smtp_address}"
                ) from exc
            except (ErrorServerBusy, RateLimitError) as exc:
                back_off = getattr(exc, "back_off", None) or getattr(exc, "wait", None)
                wait = float(back_off) if back_off else float(2**attempt)
                if retry and attempt < self._max_retries and wait <= self._max_retry_wait:
                    log.info("%s: Exchange asked us to wait %.1f s (%s)", self.name, wait, action)
                    self._sleep(wait)
                    continue
                raise TransientMailboxError(
                    f"{self.name}: Exchange is busy while {action}; retry after {wait:.0f} s",
                    retry_after=wait,
                ) from exc
            except (
                ErrorInternalServerTransientError,
                ErrorMailboxStoreUnavailable,
                ErrorTimeoutExpired,
                TransportError,
                RequestException,
            ) as exc:
                # A certificate the bot cannot verify is a set-up problem; retrying won't help.
                if _caused_by(exc, SSLError):
                    raise MailboxError(
                        f"{self.name}: the certificate of {self._endpoint} could not be "
                        "verified; set [mailbox.ews] ca_file to the council's certificate "
                        "authority"
                    ) from exc
                wait = float(2**attempt)
                if retry and attempt < self._max_retries:
                    log.info("%s: %s failed (%s); retrying", self.name, action,
                             type(exc).__name__)
                    self._sleep(wait)
                    continue
                raise TransientMailboxError(
                    f"{self.name}: connection to Exchange failed while {action} "
                    f"({type(exc).__name__})",
                    retry_after=wait,
                ) from exc
        raise AssertionError("unreachable")

    # Folders.

    def _processed_folder(self, account: Any, path: str, create: bool = True) -> Any:
        """Return the folder at path under the top of the mailbox, made if missing and create."""
        from exchangelib import Folder, Q
        from exchangelib.folders import SHALLOW, FolderCollection

        if path in self._folders:
            return self._folders[path]
        parent = account.msg_folder_root
        for part in [p for p in path.split("/") if p]:
            found = list(
                FolderCollection(account=account, folders=[parent]).find_folders(
                    q=Q(name=part), depth=SHALLOW
                )
            )
            found = [f for f in found if not isinstance(f, Exception)]
            if found:
                parent = found[0]
                continue
            if not create:
                return None
            child = Folder(parent=parent, name=part)
            child.save()
            log.info("%s: created mail folder %r", self.name, part)
            parent = child
        self._folders[path] = parent
        return parent

    # The Mailbox protocol.

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message still in the inbox, with its MIME content."""
        # When Exchange says each item arrived in the inbox, by item id.
        arrivals: dict[str, datetime | None] = {}

        def list_ids(account: Any) -> list[tuple[str, str]]:
            items = account.inbox.all().only("id", "changekey", "datetime_received")
            listed = []
            for item in items:
                arrivals[item.id] = _as_utc(item.datetime_received)
                listed.append((item.id, item.changekey))
            return listed

        ids = self._call("listing the inbox", list_ids)
        for start in range(0, len(ids), _FETCH_CHUNK):
            chunk = ids[start:start + _FETCH_CHUNK]

            def download(account: Any, chunk: list[tuple[str, str]] = chunk) -> list[Any]:
                return list(account.fetch(ids=chunk, only_fields=["mime_content"]))

            for (item_id, _), item in zip(
                chunk, self._call("downloading messages", download), strict=True
            ):
                if isinstance(item, Exception):
                    # The item left the inbox between listing and download.
                    log.debug("%s: item vanished before download (%s)", self.name, item)
                    continue
                if item.mime_content is None:
                    continue
                yield FetchedMail(
                    server_id=item_id, raw=bytes(item.mime_content),
                    arrived_at=arrivals.get(item_id),
                )

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move an inbox item into folder under the top of the mailbox."""
        from exchangelib.errors import ErrorItemNotFound

        def move(account: Any) -> None:
            target = self._processed_folder(account, folder)
            results = account.bulk_move(ids=[(server_id, None)], to_folder=target)
            for result in results:
                if isinstance(result, ErrorItemNotFound):
                    log.warning("%s: item %s had already left the inbox", self.name, server_id)
                elif isinstance(result, Exception):
                    raise result

        self._call(f"moving a message to {folder!r}", move)

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move a message the engine filed in source (Quarantine) on to target, by Message-ID."""
        from exchangelib.errors import ErrorItemNotFound

        def move(account: Any) -> bool:
            found = self._find_by_message_id(account, source, message_id)
            if found:
                destination = self._processed_folder(account, target)
                failed = [result for result in account.bulk_move(ids=found, to_folder=destination)
                          if isinstance(result, Exception)]
                if not failed:
                    return True
                # One that left source since the search may be in target; not so any other.
                if not all(isinstance(result, ErrorItemNotFound) for result in failed):
                    raise MailboxError(f"{self.name}: Exchange did not move a message to "
                                       f"{target!r}: {type(failed[0]).__name__}")
            # One already in target (moved before a crash, say) needs nothing more.
            return bool(self._find_by_message_id(account, target, message_id))

        if not self._call(f"moving a message from {source!r} to {target!r}", move):
            raise MessageNotFound(f"{self.name}: message {message_id or server_id} is in "
                                  f"neither {source} nor {target}")

    def _find_by_message_id(
        self, account: Any, path: str, message_id: str | None
    ) -> list[tuple[str, str]]:
        """Return the ids of the items in a folder with this Message-ID, if the folder is there."""
        folder = self._processed_folder(account, path, create=False) if message_id else None
        if folder is None:
            return []
        items = folder.filter(message_id=message_id).only("id", "changekey")
        return [(item.id, item.changekey) for item in items]

    def send(self, message: EmailMessage) -> None:
        """Send a message's own MIME (see send_raw)."""
        self.send_raw(from_message(message))

    def send_raw(self, mail: OutgoingMail) -> None:
        """Send the message's own MIME with SendAndSaveCopy, so its headers survive in Sent."""
        from exchangelib import Message

        raw = mail.raw

        def send(account: Any) -> None:
            item = Message(account=account, folder=account.sent, mime_content=raw)
            item.send_and_save()

        # A send is not retried blindly: the engine asks find_sent when the outcome is unknown.
        self._call("sending a message", send, retry=False)

    def find_sent(self, message_id: str) -> bool:
        """Say whether Sent Items holds a message with this Message-ID."""

        def search(account: Any) -> bool:
            return bool(account.sent.filter(message_id=message_id).only("id").count() > 0)

        return self._call("searching Sent Items", search)

    def wait_for_mail(self, timeout: float) -> bool:
        """Poll the inbox count every poll_seconds; say True when it grows before timeout."""

        def count(account: Any) -> int:
            return int(account.inbox.all().count())

        baseline = self._call("counting the inbox", count)
        return poll_until(
            lambda: self._call("counting the inbox", count) > baseline,
            timeout,
            self.poll_seconds,
            self._sleep,
            look_first=False,
        )

    def check(self) -> list[str]:
        """Connect and describe the inbox and Sent Items."""

        def describe(account: Any) -> list[str]:
            lines = []
            for folder in (account.inbox, account.sent):
                folder.refresh()
                lines.append(
                    f"{self.primary_smtp_address}: {folder.name} "
                    f"({folder.total_count} messages)"
                )
            return lines

        return self._call("checking folders", describe)

    def close(self) -> None:
        """Close this mailbox's connections; the next call reconnects."""
        with self._lock:
            if self._account is not None:
                # Closing must never fail the caller, whatever state the connections are in.
                try:
                    self._account.protocol.close()
                except Exception as exc:
                    log.debug("%s: error while closing EWS connections: %s", self.name, exc)
                self._account = None
                self._folders.clear()
