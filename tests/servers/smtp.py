"""An aiosmtpd SMTP server in a thread that delivers into the Maildirs Dovecot serves."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Protocol

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers import LOOPBACK, free_port

# The name the server gives itself in its greeting and trace headers.
SERVER_NAME = "smtp.rrbot.test"


class LocalDelivery(Protocol):
    """Where accepted mail goes and who may log in: the store Dovecot serves."""

    def owns_domain(self, domain: str) -> bool:
        """Say whether mail for domain is delivered here."""
        ...

    def has_user(self, address: str) -> bool:
        """Say whether address is a local mailbox."""
        ...

    def check_password(self, address: str, password: str) -> bool:
        """Say whether password is the user's password."""
        ...

    def deliver(self, address: str, raw: bytes) -> object:
        """Put raw into the user's inbox."""
        ...


@dataclass(frozen=True)
class RelayedMail:
    """A message an authenticated client sent to a domain this server does not own."""

    mail_from: str
    recipient: str
    raw: bytes


class MaildirHandler:
    """aiosmtpd handler: local recipients get the message in their Maildir, others are refused.

    A client that has logged in may also send to other domains, as to a real submission
    server; that mail is kept in `relayed` instead of going anywhere.
    """

    def __init__(self, delivery: LocalDelivery) -> None:
        self.delivery = delivery
        self.relayed: list[RelayedMail] = []
        self._lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept local users, and other domains only from a client that logged in."""
        domain = address.rpartition("@")[2]
        if self.delivery.owns_domain(domain):
            if not self.delivery.has_user(address):
                return f"550 5.1.1 <{address}>: no such user here"
        elif not session.authenticated:
            return f"550 5.7.1 <{address}>: relaying denied, {domain} is not a local domain"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Write the message, with trace headers, into each local recipient's inbox."""
        content = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        trace = (
            f"Return-Path: <{mail_from}>\r\n"
            f"Received: from {session.host_name or 'client'} ([{session.peer[0]}])\r\n"
            f"\tby {SERVER_NAME} (rrbot test server); {formatdate(localtime=False)}\r\n"
        ).encode()
        for recipient in envelope.rcpt_tos:
            domain = recipient.rpartition("@")[2]
            if self.delivery.owns_domain(domain):
                self.delivery.deliver(recipient, trace + content)
            else:
                with self._lock:
                    self.relayed.append(RelayedMail(mail_from, recipient, trace + content))
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on 127.0.0.1 offering STARTTLS and AUTH PLAIN/LOGIN, plus one with TLS."""

    def __init__(self, delivery: LocalDelivery, cert_file: str, key_file: str) -> None:
        self.delivery = delivery
        self.handler = MaildirHandler(delivery)
        self.host = LOOPBACK
        self.port = free_port()
        self.smtps_port = free_port()
        self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls_context.load_cert_chain(cert_file, key_file)
        self._controllers: list[Controller] = []

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Check a login against the mail users' passwords."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=self.delivery.check_password(login, password), handled=False)

    def start(self) -> None:
        """Start both listeners, each in its own thread."""
        common: dict[str, Any] = {
            "hostname": self.host,
            "server_hostname": SERVER_NAME,
            "authenticator": self._authenticate,
            "auth_require_tls": False,
            "ready_timeout": 10.0,
        }
        submission = Controller(
            self.handler, port=self.port, tls_context=self._tls_context, **common
        )
        implicit_tls = Controller(
            self.handler, port=self.smtps_port, ssl_context=self._tls_context, **common
        )
        for controller in (submission, implicit_tls):
            controller.start()
            self._controllers.append(controller)

    def stop(self) -> None:
        """Stop both listeners and their threads."""
        while self._controllers:
            self._controllers.pop().stop()
