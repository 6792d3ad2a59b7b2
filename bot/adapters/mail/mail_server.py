"""What the IMAP and SMTP adapters share: a server's endpoint and TLS trust, a login, error text."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from bot.kernel.mailbox import MailboxError, TransientMailboxError

# Hosts on which an unencrypted SMTP or IMAP connection is acceptable: this machine only.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# A server's response text inside imaplib's error, without the bytes repr and response code.
_RESPONSE_TEXT = re.compile(r"^b?['\"]?(?:\[[^\]]*\]\s*)?(.*?)['\"]?$")


def server_text(error: BaseException | bytes | str | None) -> str:
    """Return the human part of a server's reply, lower-cased at the start, in one line."""
    if isinstance(error, bytes):
        text = error.decode("utf-8", "replace")
    else:
        text = str(error) if error is not None else ""
    text = " ".join(text.split())
    match = _RESPONSE_TEXT.match(text)
    if match:
        text = match.group(1)
    text = text.strip().rstrip(".")
    if not text:
        return "no reason given"
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def socket_reason(error: BaseException) -> str:
    """Describe a network error in a few words."""
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return server_text(error) or type(error).__name__


@dataclass(frozen=True)
class Login:
    """The account a mail server is logged in to, with a password or an OAuth2 access token.

    The token may be a function returning the current one, so that each login gets a fresh one.
    """

    username: str
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | Callable[[], str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("give exactly one of password and oauth2_token")

    def xoauth2(self) -> str:
        """Return the SASL XOAUTH2 initial response for this account and its current token."""
        token = self.oauth2_token
        current = token() if callable(token) else str(token)
        return f"user={self.username}\x01auth=Bearer {current}\x01\x01"


@dataclass(frozen=True)
class ServerEndpoint:
    """Where a mail server listens, how the connection is secured, and which CA is trusted."""

    # The protocol's name in messages ("IMAP", "SMTP") and, lower-cased, in its settings' keys.
    protocol: ClassVar[str] = "mail"

    host: str
    port: int
    security: str
    # The PEM file of the CA that signed the server's certificate; None trusts the system's.
    ca_file: str | None = None
    # Seconds to wait for the server on each network operation.
    timeout: float = 30.0

    @property
    def where(self) -> str:
        """Return "host:port", as messages name the server."""
        return f"{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        """Return a TLS context that verifies the server (against ca_file if one is given)."""
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise MailboxError(
                f"ca_file {self.ca_file} could not be read as a PEM CA certificate: "
                f"{socket_reason(error)}"
            ) from None

    def certificate_error(self, error: ssl.SSLError) -> MailboxError:
        """Describe a certificate that failed verification, and what to do about it."""
        detail = getattr(error, "verify_message", None) or server_text(error.reason)
        if self.ca_file:
            fix = f"check that ca_file {self.ca_file} is the CA that signed it"
        else:
            fix = "set ca_file to the CA certificate that signed it, or add that CA to the system"
            fix += " trust store"
        return MailboxError(
            f"the certificate of {self.protocol} server {self.where} could not be verified"
            f" ({detail}); {fix}"
        )

    def connection_error(self, error: BaseException) -> MailboxError:
        """Describe a failure to reach or secure a connection: final, or worth a later retry."""
        if isinstance(error, ssl.SSLCertVerificationError):
            return self.certificate_error(error)
        key = self.protocol.lower()
        if isinstance(error, ssl.SSLError):
            return MailboxError(
                f"TLS with {self.protocol} server {self.where} failed"
                f" ({server_text(error.reason)}); check {key}_port and {key}_security"
            )
        if isinstance(error, socket.gaierror):
            return MailboxError(
                f"{self.protocol} server name {self.host} could not be resolved"
                f" ({error.strerror})"
            )
        return TransientMailboxError(
            f"{self.protocol} server {self.where} is not reachable: {socket_reason(error)}"
        )
