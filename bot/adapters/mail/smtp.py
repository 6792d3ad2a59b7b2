"""Sending the partnership's mail through an SMTP server, logged in with a password or XOAUTH2."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from bot.adapters.mail.mail_server import (
    LOOPBACK_HOSTS,
    Login,
    ServerEndpoint,
    server_text,
    socket_reason,
)
from bot.kernel.mailbox import MailboxAuthError, MailboxError, TransientMailboxError
from bot.kernel.outgoing import OutgoingMail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpEndpoint(ServerEndpoint):
    """An SMTP server: STARTTLS (port 587), implicit TLS ("ssl"), or "plain" on this machine."""

    protocol: ClassVar[str] = "SMTP"

    port: int = 587
    security: str = "starttls"

    def __post_init__(self) -> None:
        if self.security not in ("ssl", "starttls", "plain"):
            raise ValueError(
                f"smtp_security must be 'ssl', 'starttls' or 'plain', not {self.security!r}"
            )
        if self.security == "plain" and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"smtp_security 'plain' sends the password unencrypted, so it is only allowed "
                f"for a server on this machine, not {self.host}"
            )


# Recipients an SMTP server refused, each with its reply code and text.
RefusedRecipients = list[tuple[str, tuple[int, bytes]]]


class SmtpSender:
    """Hands messages to an SMTP server, opening a connection for each message or check."""

    def __init__(self, endpoint: SmtpEndpoint, login: Login) -> None:
        self.endpoint = endpoint
        self.login = login

    def send(self, mail: OutgoingMail) -> RefusedRecipients:
        """Hand the message's bytes to the SMTP server; return any recipients it refused."""
        envelope = [mail.sender, *mail.recipients]
        # As send_message would: an address beyond ASCII needs the server's SMTPUTF8.
        options = [] if all(address.isascii() for address in envelope) else ["SMTPUTF8"]
        try:
            client = self._connect()
            with client:
                refused = client.sendmail(mail.sender, list(mail.recipients), mail.raw,
                                          mail_options=options)
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error, sending=True) from None
        log.debug("Sent message %s through SMTP %s", mail.message_id, self.endpoint.where)
        return list(refused.items())

    def partly_refused(self, message_id: str, refused: RefusedRecipients) -> MailboxError:
        """Describe a message that was sent, though to only some of its recipients."""
        return MailboxError(
            f"message {message_id} was sent, but SMTP server {self.endpoint.where} refused "
            f"some recipients: {_described(refused)}"
        )

    def check(self) -> str:
        """Connect and log in; return a line saying SMTP is ready to send."""
        try:
            with self._connect():
                pass
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error, sending=False) from None
        endpoint = self.endpoint
        return (
            f"SMTP {endpoint.where} ({endpoint.security}): ready to send as {self.login.username}"
        )

    def _failure(self, error: smtplib.SMTPException | OSError, sending: bool) -> MailboxError:
        """Describe an SMTP failure in one line: refused, final, or worth a later retry.

        While checking, only a certificate or a refused login is final: anything else is
        taken as the server not being reachable for now.
        """
        endpoint = self.endpoint
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return MailboxAuthError(
                f"SMTP login to {endpoint.where} as {self.login.username} was refused: "
                f"{server_text(error.smtp_error)}"
            )
        if isinstance(error, ssl.SSLCertVerificationError):
            return endpoint.certificate_error(error)
        if not sending:
            return TransientMailboxError(
                f"SMTP server {endpoint.where} is not reachable: {socket_reason(error)}"
            )
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return MailboxError(
                f"SMTP server {endpoint.where} refused every recipient:"
                f" {_described(error.recipients.items())}"
            )
        if isinstance(error, smtplib.SMTPResponseException):
            text = f"{error.smtp_code} {server_text(error.smtp_error)}"
            if 400 <= error.smtp_code < 500:
                return TransientMailboxError(
                    f"SMTP server {endpoint.where} asked to try later: {text}"
                )
            return MailboxError(f"SMTP server {endpoint.where} refused the message: {text}")
        return endpoint.connection_error(error)

    def _connect(self) -> smtplib.SMTP:
        """Open, secure and log in an SMTP connection."""
        endpoint = self.endpoint
        if endpoint.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, context=endpoint.tls_context(),
                timeout=endpoint.timeout,
            )
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        try:
            client.ehlo()
            if endpoint.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailboxError(
                        f"SMTP server {endpoint.where} does not offer STARTTLS; set "
                        f"smtp_security to 'ssl' and use its TLS port"
                    )
                client.starttls(context=endpoint.tls_context())
                client.ehlo()
            if self.login.oauth2_token is not None:
                # smtplib asks for the initial response with no challenge; a later challenge
                # carries the server's error, which is acknowledged with an empty reply.
                def respond(challenge: bytes | None = None) -> str:
                    return self.login.xoauth2() if challenge is None else ""

                client.auth("XOAUTH2", respond, initial_response_ok=True)
            elif client.has_extn("auth"):
                client.login(self.login.username, self.login.password or "")
        except BaseException:
            client.close()
            raise
        return client


def _described(refused: Iterable[tuple[str, tuple[int, bytes]]]) -> str:
    """Describe refused recipients: each address with the server's code and reason."""
    return "; ".join(
        f"{address} ({code} {server_text(text)})" for address, (code, text) in refused
    )
