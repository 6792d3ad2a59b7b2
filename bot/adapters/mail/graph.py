"""Microsoft Graph mailbox adapter for Exchange Online shared mailboxes."""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from bot.kernel.mailbox import (
    CursorStore,
    FetchedMail,
    MailboxAuthError,
    MailboxError,
    MemoryCursorStore,
    TransientMailboxError,
)

log = logging.getLogger(__name__)

DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"

# Error codes Graph uses when a delta link can no longer be resumed and a full sync is needed.
_SYNC_RESET_CODES = frozenset(
    {"syncstatenotfound", "syncstateinvalid", "resyncrequired", "invaliddeltatoken"}
)

# Token errors from Entra ID that mean the service is struggling rather than the secret is wrong.
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})

# The message properties the inbox delta asks for: its id and when it arrived in the mailbox.
_DELTA_SELECT = "id,receivedDateTime"


def _odata_string(value: str) -> str:
    """Quote value as an OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given either as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_received(value: object) -> datetime | None:
    """Read a message's receivedDateTime (ISO 8601, normally UTC with a Z) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Graph gives every date-time in UTC; one without an offset is UTC too.
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    """Return the error code and first line of the message in a Graph error response."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return str(error), ""
    message = str(error.get("message", "")).splitlines()
    return str(error.get("code", "")), message[0] if message else ""


class GraphMailbox:
    """A shared mailbox in Exchange Online, reached through Microsoft Graph with an app secret.

    Design of fetch_new: a delta query on the inbox tells us which messages arrived or left
    since the last call, and the ids delivered but not yet marked processed are kept in the
    cursor store next to the delta link. Every fetch yields the whole pending set, so a
    message is returned again until mark_processed moves it (at-least-once). When Graph says
    the delta link has expired (410 Gone) the link is dropped and a full delta rebuilds the
    pending set from what is actually in the inbox; with immutable ids the server ids are the
    same as before, so the engine de-duplicates them.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        mailbox_address: str,
        name: str | None = None,
        authority_url: str = DEFAULT_AUTHORITY_URL,
        graph_url: str = DEFAULT_GRAPH_URL,
        poll_seconds: float = 60.0,
        cursor_store: CursorStore | None = None,
        max_concurrency: int = 4,
        max_retries: int = 3,
        max_retry_wait: float = 120.0,
        timeout: float = 60.0,
        page_size: int = 50,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name or mailbox_address
        self.mailbox_address = mailbox_address
        self.poll_seconds = poll_seconds
        self._tenant_id = tenant_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority_url = authority_url.rstrip("/")
        self._graph_url = graph_url.rstrip("/")
        self._cursors: CursorStore = cursor_store or MemoryCursorStore()
        self._max_concurrency = max(1, max_concurrency)
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._timeout = timeout
        self._page_size = page_size
        self._verify = verify
        self._transport = transport
        self._sleep = sleep
        self._semaphore = threading.BoundedSemaphore(self._max_concurrency)
        self._lock = threading.RLock()
        self._client: httpx.Client | None = None
        self._app: Any = None
        self._folder_ids: dict[str, str] = {}
        self._user_path = f"/users/{quote(mailbox_address, safe='@')}"
        self._delta_key = f"graph:{self.name}:delta_link"
        self._pending_key = f"graph:{self.name}:pending_ids"
        # When each pending message arrived in the mailbox, as the inbox delta reported it.
        self._arrivals: dict[str, datetime] = {}

    # Connections and tokens.

    def _http(self) -> httpx.Client:
        """Return the HTTP client, creating it after close() or on first use."""
        with self._lock:
            if self._client is None:
                verify: bool | ssl.SSLContext = (
                    ssl.create_default_context(cafile=self._verify)
                    if isinstance(self._verify, str)
                    else self._verify
                )
                self._client = httpx.Client(
                    verify=verify,
                    transport=self._transport,
                    timeout=self._timeout,
                    limits=httpx.Limits(max_connections=self._max_concurrency),
                )
            return self._client

    def _token(self) -> str:
        """Return an app-only access token for Graph, from msal's cache when still valid."""
        import msal
        import requests

        with self._lock:
            try:
                if self._app is None:
                    # A session of our own, because requests lets REQUESTS_CA_BUNDLE override a
                    # session's verify setting, and a private CA bundle must win.
                    session = requests.Session()
                    session.request = functools.partial(  # type: ignore[method-assign]
                        session.request, verify=self._verify, timeout=self._timeout
                    )
                    self._app = msal.ConfidentialClientApplication(
                        self._client_id,
                        client_credential=self._client_secret,
                        authority=f"{self._authority_url}/{self._tenant_id}",
                        # Skip the instance discovery call; well-known clouds need none anyway.
                        instance_discovery=False,
                        http_client=session,
                    )
                parts = urlsplit(self._graph_url)
                scope = f"{parts.scheme}://{parts.netloc}/.default"
                result = self._app.acquire_token_for_client(scopes=[scope])
            except requests.RequestException as exc:
                self._app = None
                raise TransientMailboxError(
                    f"{self.name}: cannot reach the sign-in service ({type(exc).__name__})"
                ) from exc
            except ValueError as exc:
                self._app = None
                raise MailboxAuthError(
                    f"{self.name}: tenant {self._tenant_id} was not recognised by "
                    f"{self._authority_url}; check the tenant id"
                ) from exc
        if "access_token" in result:
            return str(result["access_token"])
        error = str(result.get("error", "unknown_error"))
        description = str(result.get("error_description", "")).splitlines()
        detail = description[0] if description else ""
        if error in _TRANSIENT_TOKEN_ERRORS:
            raise TransientMailboxError(f"{self.name}: sign-in service unavailable: {detail}")
        raise MailboxAuthError(
            f"{self.name}: Microsoft Entra refused the app credentials ({error}): {detail}"
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one Graph request, honouring throttling, and map auth failures to errors."""
        if not url.startswith("http"):
            url = self._graph_url + url
        if params:
            # Spaces in OData expressions are sent as %20, never as "+".
            url += "?" + urlencode(params, quote_via=quote, safe="$")
        idempotent = method == "GET"
        short = urlsplit(url).path
        for attempt in range(self._max_retries + 1):
            headers = {
                "Authorization": f"Bearer {self._token()}",
                # Immutable ids keep a message's id when it moves between folders.
                "Prefer": 'IdType="ImmutableId"',
            }
            if content_type:
                headers["Content-Type"] = content_type
            if extra_headers:
                headers.update(extra_headers)
            try:
                with self._semaphore:
                    response = self._http().request(
                        method, url, json=json_body, content=content,
                        headers=headers,
                    )
            except httpx.TransportError as exc:
                wait = float(2**attempt)
                if idempotent and attempt < self._max_retries:
                    log.debug("Graph %s %s failed (%s); retrying", method, short, exc)
                    self._sleep(wait)
                    continue
                raise TransientMailboxError(
                    f"{self.name}: connection to Microsoft Graph failed during {method} "
                    f"({type(exc).__name__}); the outcome is unknown",
                    retry_after=wait,
                ) from exc
            log.debug("Graph %s %s -> %s", method, short, response.status_code)
            status = response.status_code
            if status == 429 or status == 503 or (idempotent and status in (502, 504)):
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                wait = retry_after if retry_after is not None else float(2**attempt)
                if attempt < self._max_retries and wait <= self._max_retry_wait:
                    log.info("%s: Graph asked us to wait %.1f s (HTTP %s)", self.name, wait, status)
                    self._sleep(wait)
                    continue
                raise TransientMailboxError(
                    f"{self.name}: Microsoft Graph is throttling or busy (HTTP {status}); "
                    f"retry after {wait:.0f} s",
                    retry_after=wait,
                )
            if status == 401:
                code, message = _graph_error(response)
                raise MailboxAuthError(
                    f"{self.name}: Microsoft Graph rejected the access token ({code}): {message}"
                )
            if status == 403:
                code, message = _graph_error(response)
                raise MailboxAuthError(
                    f"{self.name}: the app has no permission on {self.mailbox_address} "
                    f"({code}): {message}; grant Mail.ReadWrite and Mail.Send"
                )
            return response
        raise AssertionError("unreachable")

    def _fail(self, response: httpx.Response, action: str) -> MailboxError:
        """Build a one-line error for an unexpected Graph response."""
        code, message = _graph_error(response)
        text = f"{self.name}: {action} failed: HTTP {response.status_code} {code}: {message}"
        if response.status_code >= 500:
            return TransientMailboxError(text)
        return MailboxError(text)

    # Pending ids and the inbox delta.

    def _pending(self) -> list[str]:
        """Return the ids fetched from the inbox and not yet marked processed."""
        raw = self._cursors.get(self._pending_key)
        return list(json.loads(raw)) if raw else []

    def _set_pending(self, ids: list[str]) -> None:
        """Persist the pending ids."""
        self._cursors.set(self._pending_key, json.dumps(ids))

    def _sync(self) -> tuple[list[str], int]:
        """Run the inbox delta; return the pending ids and how many of them are new."""
        with self._lock:
            pending = self._pending()
            link = self._cursors.get(self._delta_key) or None
            full = link is None
            url = link or f"{self._graph_url}{self._user_path}/mailFolders/inbox/messages/delta"
            params: dict[str, str] | None = None if link else {"$select": _DELTA_SELECT}
            added: list[str] = []
            removed: set[str] = set()
            while True:
                response = self._request(
                    "GET", url, params=params,
                    extra_headers={
                        "Prefer": f'IdType="ImmutableId", odata.maxpagesize={self._page_size}'
                    },
                )
                code, _ = _graph_error(response) if response.status_code >= 400 else ("", "")
                if not full and (
                    response.status_code == 410 or code.lower() in _SYNC_RESET_CODES
                ):
                    log.warning("%s: the inbox delta link expired; resynchronising", self.name)
                    self._cursors.set(self._delta_key, "")
                    full, added, removed = True, [], set()
                    url = f"{self._graph_url}{self._user_path}/mailFolders/inbox/messages/delta"
                    params = {"$select": _DELTA_SELECT}
                    continue
                if response.status_code != 200:
                    raise self._fail(response, "reading the inbox changes")
                body = response.json()
                for entry in body.get("value", []):
                    if "@removed" in entry:
                        removed.add(entry["id"])
                    else:
                        added.append(entry["id"])
                        arrived_at = _parse_received(entry.get("receivedDateTime"))
                        if arrived_at is not None:
                            self._arrivals[entry["id"]] = arrived_at
                if body.get("@odata.nextLink"):
                    url, params = body["@odata.nextLink"], None
                    continue
                delta_link = body.get("@odata.deltaLink")
                break
            before = set(pending)
            base = [] if full else [i for i in pending if i not in removed]
            merged = list(dict.fromkeys(base + [i for i in added if i not in removed]))
            self._set_pending(merged)
            self._arrivals = {i: self._arrivals[i] for i in merged if i in self._arrivals}
            if delta_link:
                self._cursors.set(self._delta_key, delta_link)
            return merged, len(set(merged) - before)

    def _download(self, server_id: str) -> bytes | None:
        """Return the MIME bytes of one message, or None when it has left the mailbox."""
        response = self._request(
            "GET", f"{self._user_path}/messages/{quote(server_id, safe='')}/$value"
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, "downloading a message")
        return response.content

    def _arrival(self, server_id: str) -> datetime | None:
        """Return when a message arrived, asking Graph if the delta did not say (an old link)."""
        with self._lock:
            known = self._arrivals.get(server_id)
        if known is not None:
            return known
        response = self._request(
            "GET", f"{self._user_path}/messages/{quote(server_id, safe='')}",
            params={"$select": "receivedDateTime"},
        )
        if response.status_code != 200:
            # A message that left the mailbox since is not an error here; its download says so.
            return None
        arrived_at = _parse_received(response.json().get("receivedDateTime"))
        if arrived_at is not None:
            with self._lock:
                self._arrivals[server_id] = arrived_at
        return arrived_at

    def _fetch(self, server_id: str) -> FetchedMail | None:
        """Return one message with its arrival time, or None when it has left the mailbox."""
        raw = self._download(server_id)
        if raw is None:
            return None
        return FetchedMail(server_id=server_id, raw=raw, arrived_at=self._arrival(server_id))

    # The Mailbox protocol.

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox that has not been marked processed."""
        pending, _ = self._sync()
        if not pending:
            return
        gone: list[str] = []
        with ThreadPoolExecutor(max_workers=self._max_concurrency) as pool:
            for server_id, mail in zip(pending, pool.map(self._fetch, pending), strict=True):
                if mail is None:
                    gone.append(server_id)
                    continue
                yield mail
        if gone:
            with self._lock:
                self._set_pending([i for i in self._pending() if i not in set(gone)])

    def _child_folder(self, parent: str, display_name: str, create: bool) -> str | None:
        """Return the id of a child folder by display name, creating it if asked."""
        path = f"{self._user_path}/mailFolders/{quote(parent, safe='')}/childFolders"
        params = {"$filter": f"displayName eq {_odata_string(display_name)}", "$select": "id"}
        response = self._request("GET", path, params=params)
        if response.status_code != 200:
            raise self._fail(response, f"looking up folder {display_name!r}")
        found = response.json().get("value", [])
        if found:
            return str(found[0]["id"])
        if not create:
            return None
        response = self._request("POST", path, json_body={"displayName": display_name})
        if response.status_code == 409:
            # Another client created the folder between our lookup and our create.
            return self._child_folder(parent, display_name, create=False)
        if response.status_code not in (200, 201):
            raise self._fail(response, f"creating folder {display_name!r}")
        log.info("%s: created mail folder %r", self.name, display_name)
        return str(response.json()["id"])

    def _folder_id(self, folder: str, create: bool = True) -> str | None:
        """Return the id of a folder path under the mailbox root, like "Processed/2025"."""
        if folder in self._folder_ids:
            return self._folder_ids[folder]
        parent: str | None = "msgfolderroot"
        for part in [p for p in folder.split("/") if p]:
            assert parent is not None
            parent = self._child_folder(parent, part, create)
            if parent is None:
                return None
        if parent is not None:
            self._folder_ids[folder] = parent
        return parent

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move a message out of the inbox into folder, creating the folder if needed."""
        folder_id = self._folder_id(folder)
        path = f"{self._user_path}/messages/{quote(server_id, safe='')}/move"
        response = self._request("POST", path, json_body={"destinationId": folder_id})
        if response.status_code == 404:
            log.warning("%s: message %s had already left the inbox", self.name, server_id)
        elif response.status_code not in (200, 201):
            raise self._fail(response, f"moving a message to {folder!r}")
        with self._lock:
            self._set_pending([i for i in self._pending() if i != server_id])
            self._arrivals.pop(server_id, None)

    def _find_in(self, folder: str, message_id: str) -> str | None:
        """Return the id of a message with this internetMessageId in a well-known folder."""
        response = self._request(
            "GET",
            f"{self._user_path}/mailFolders/{folder}/messages",
            params={
                "$filter": f"internetMessageId eq {_odata_string(message_id)}",
                "$select": "id",
                "$top": "1",
            },
        )
        if response.status_code != 200:
            raise self._fail(response, f"searching {folder}")
        found = response.json().get("value", [])
        return str(found[0]["id"]) if found else None

    def send(self, message: EmailMessage) -> None:
        """Create a draft from the message's MIME, then send it; Graph saves it in Sent Items.

        A draft left behind by an earlier attempt whose outcome was lost is sent instead of
        creating a second one.
        """
        message_id = message["Message-ID"]
        if not message_id:
            raise ValueError("send() needs a message with its Message-ID set")
        message_id = str(message_id).strip()
        draft_id = self._find_in("drafts", message_id)
        if draft_id is None:
            raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            response = self._request(
                "POST",
                f"{self._user_path}/messages",
                content=base64.b64encode(raw),
                content_type="text/plain",
            )
            if response.status_code not in (200, 201):
                raise self._fail(response, "creating the draft")
            created = response.json()
            draft_id = str(created["id"])
            stamped = created.get("internetMessageId")
            if stamped and stamped != message_id:
                log.warning("%s: Graph changed the Message-ID of a draft", self.name)
        else:
            log.info("%s: sending the draft left by an earlier attempt", self.name)
        response = self._request(
            "POST", f"{self._user_path}/messages/{quote(draft_id, safe='')}/send"
        )
        if response.status_code not in (200, 202, 204):
            raise self._fail(response, "sending the message")

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in Sent Items."""
        return self._find_in("sentitems", message_id) is not None

    def wait_for_mail(self, timeout: float) -> bool:
        """Poll the inbox delta every poll_seconds until new mail arrives or timeout passes."""
        deadline = time.monotonic() + timeout
        waited = 0.0
        while True:
            _, new = self._sync()
            if new:
                return True
            remaining = min(timeout - waited, deadline - time.monotonic())
            if remaining <= 0:
                return False
            step = min(self.poll_seconds, remaining)
            self._sleep(step)
            waited += step

    def check(self) -> list[str]:
        """Sign in and describe the folders the bot uses."""
        lines = []
        for folder in ("inbox", "sentitems", "drafts"):
            response = self._request(
                "GET",
                f"{self._user_path}/mailFolders/{folder}",
                params={"$select": "displayName,totalItemCount"},
            )
            if response.status_code != 200:
                raise self._fail(response, f"opening {folder}")
            body = response.json()
            lines.append(
                f"{self.mailbox_address}: {body.get('displayName', folder)} "
                f"({body.get('totalItemCount', '?')} messages)"
            )
        return lines

    def close(self) -> None:
        """Close HTTP connections; the next call opens new ones."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
