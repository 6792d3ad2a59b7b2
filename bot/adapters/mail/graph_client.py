"""Microsoft Graph over HTTP for one mailbox: app-only tokens, throttling, retries, errors."""

from __future__ import annotations

import email.utils
import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from bot.kernel.mailbox import MailboxAuthError, MailboxError, TransientMailboxError

log = logging.getLogger(__name__)

DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"

# Token errors from Entra ID that mean the service is struggling rather than the secret is wrong.
_TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


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


def graph_error(response: httpx.Response) -> tuple[str, str]:
    """Return the error code and first line of the message in a Graph error response."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return str(error), ""
    message = str(error.get("message", "")).splitlines()
    return str(error.get("code", "")), message[0] if message else ""


@dataclass(frozen=True)
class GraphApp:
    """The app registration the bot signs in as (client credentials), and where it signs in."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_url: str = DEFAULT_AUTHORITY_URL
    graph_url: str = DEFAULT_GRAPH_URL


class GraphClient:
    """Requests to Microsoft Graph on behalf of one shared mailbox, signed in with an app secret.

    Throttling (429, 503) is waited out as Graph asks, idempotent requests are retried after a
    dropped connection, and refused tokens and permissions become MailboxAuthError.
    """

    def __init__(
        self,
        app: GraphApp,
        mailbox_address: str,
        *,
        name: str | None = None,
        max_concurrency: int = 4,
        max_retries: int = 3,
        max_retry_wait: float = 120.0,
        timeout: float = 60.0,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name or mailbox_address
        self.mailbox_address = mailbox_address
        self.graph_url = app.graph_url.rstrip("/")
        self.max_concurrency = max(1, max_concurrency)
        self.sleep = sleep
        # Guards the token and the HTTP client; the mailbox guards its pending ids with it too.
        self.lock = threading.RLock()
        self._app_registration = app
        self._authority_url = app.authority_url.rstrip("/")
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._timeout = timeout
        self._verify = verify
        self._transport = transport
        self._semaphore = threading.BoundedSemaphore(self.max_concurrency)
        self._client: httpx.Client | None = None
        self._app: Any = None

    def _http(self) -> httpx.Client:
        """Return the HTTP client, creating it after close() or on first use."""
        with self.lock:
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
                    limits=httpx.Limits(max_connections=self.max_concurrency),
                )
            return self._client

    def _token(self) -> str:
        """Return an app-only access token for Graph, from msal's cache when still valid."""
        import msal
        import requests

        with self.lock:
            try:
                if self._app is None:
                    # A session of our own, because requests lets REQUESTS_CA_BUNDLE override a
                    # session's verify setting, and a private CA bundle must win.
                    session = requests.Session()
                    session.request = functools.partial(  # type: ignore[method-assign]
                        session.request, verify=self._verify, timeout=self._timeout
                    )
                    registration = self._app_registration
                    self._app = msal.ConfidentialClientApplication(
                        registration.client_id,
                        client_credential=registration.client_secret,
                        authority=f"{self._authority_url}/{registration.tenant_id}",
                        # Skip the instance discovery call; well-known clouds need none anyway.
                        instance_discovery=False,
                        http_client=session,
                    )
                parts = urlsplit(self.graph_url)
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
                    f"{self.name}: tenant {self._app_registration.tenant_id} was not recognised by "
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

    def request(
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
            url = self.graph_url + url
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
                    self.sleep(wait)
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
                    self.sleep(wait)
                    continue
                raise TransientMailboxError(
                    f"{self.name}: Microsoft Graph is throttling or busy (HTTP {status}); "
                    f"retry after {wait:.0f} s",
                    retry_after=wait,
                )
            if status == 401:
                code, message = graph_error(response)
                raise MailboxAuthError(
                    f"{self.name}: Microsoft Graph rejected the access token ({code}): {message}"
                )
            if status == 403:
                code, message = graph_error(response)
                raise MailboxAuthError(
                    f"{self.name}: the app has no permission on {self.mailbox_address} "
                    f"({code}): {message}; grant Mail.ReadWrite and Mail.Send"
                )
            return response
        raise AssertionError("unreachable")

    def upload(self, upload_url: str, chunk: bytes, content_range: str) -> httpx.Response:
        """PUT one chunk to an upload session's URL, which carries its own authorisation.

        Graph refuses the Authorization header there. A dropped connection leaves the outcome
        unknown, and is raised as transient, so that the whole send is tried again.
        """
        headers = {"Content-Range": content_range, "Content-Type": "application/octet-stream"}
        try:
            with self._semaphore:
                return self._http().put(upload_url, content=chunk, headers=headers)
        except httpx.TransportError as exc:
            raise TransientMailboxError(
                f"{self.name}: connection to Microsoft Graph failed during an upload"
                f" ({type(exc).__name__})"
            ) from exc

    def fail(self, response: httpx.Response, action: str) -> MailboxError:
        """Build a one-line error for an unexpected Graph response."""
        code, message = graph_error(response)
        text = f"{self.name}: {action} failed: HTTP {response.status_code} {code}: {message}"
        if response.status_code >= 500:
            return TransientMailboxError(text)
        return MailboxError(text)

    def close(self) -> None:
        """Close HTTP connections; the next request opens new ones."""
        with self.lock:
            if self._client is not None:
                self._client.close()
                self._client = None
