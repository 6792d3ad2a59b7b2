"""The partnership mailbox over IMAP (reading, filing) and SMTP (sending), with TLS verified."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from email.message import EmailMessage

from bot.adapters.mail.imap import ImapFolders, ImapReader
from bot.adapters.mail.imap_session import ImapEndpoint
from bot.adapters.mail.mail_server import Login
from bot.adapters.mail.smtp import SmtpEndpoint, SmtpSender
from bot.kernel.mailbox import FetchedMail
from bot.kernel.outgoing import OutgoingMail, from_message
from bot.settings import MailboxSettings


class ImapSmtpMailbox:
    """The partnership mailbox on any IMAP server, sending through that provider's SMTP server.

    The IMAP part fetches, waits for mail, moves messages and files copies of sent ones in
    Sent; the SMTP part sends. Uses the standard library's imaplib and smtplib. One instance is
    meant to be used from one thread.
    """

    def __init__(
        self,
        imap: ImapReader,
        smtp: SmtpSender,
        *,
        name: str | None = None,
        save_to_sent: bool = True,
    ) -> None:
        self.imap = imap
        self.smtp = smtp
        self.name = name or imap.session.login.username
        # Whether a copy of each sent message is filed in Sent (unless the server does that).
        self.save_to_sent = save_to_sent

    @classmethod
    def from_settings(
        cls, settings: MailboxSettings, environ: Mapping[str, str]
    ) -> ImapSmtpMailbox:
        """Build the mailbox from [mailbox], its imap and smtp tables, and the secrets in environ.

        SMTP logs in with its own account, secret and CA file where [mailbox.smtp] names them,
        and otherwise with the IMAP ones.
        """
        imap, smtp = settings.imap, settings.smtp
        if imap is None or smtp is None:
            raise ValueError("the imap backend needs [mailbox.imap] and [mailbox.smtp] tables")
        password, token = _secrets(environ, imap.password_env, imap.oauth2_token_env)
        smtp_password, smtp_token = (
            _secrets(environ, smtp.password_env, smtp.oauth2_token_env)
            if smtp.has_own_secret() else (password, token)
        )
        reader = ImapReader(
            ImapEndpoint(imap.host, imap.port, imap.security, imap.ca_file),
            Login(imap.username, password, token),
            ImapFolders(
                imap.inbox, imap.sent_folder,
                (settings.processed_folder, settings.quarantine_folder),
            ),
            use_idle=imap.use_idle,
            poll_seconds=settings.poll_seconds,
        )
        smtp_ca_file = smtp.ca_file if smtp.ca_file is not None else imap.ca_file
        sender = SmtpSender(
            SmtpEndpoint(smtp.host, smtp.port, smtp.security, smtp_ca_file),
            Login(smtp.username or imap.username, smtp_password, smtp_token),
        )
        return cls(reader, sender, name=settings.address, save_to_sent=smtp.save_to_sent)

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox by UID, read or unread, without marking it read."""
        return self.imap.fetch_new()

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move the message into folder (UID MOVE, or COPY and flag where MOVE is missing)."""
        self.imap.mark_processed(server_id, folder)

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move a message the engine filed in source (Quarantine) on to target, by Message-ID."""
        self.imap.refile(server_id, message_id, source, target)

    def send(self, message: EmailMessage) -> None:
        """Send a message through SMTP, then file a copy in Sent."""
        self.send_raw(from_message(message))

    def send_raw(self, mail: OutgoingMail) -> None:
        """Send the bytes through SMTP, then file them in Sent (unless the server does that)."""
        refused = self.smtp.send(mail)
        if self.save_to_sent:
            self.imap.keep_sent_copy(mail.message_id, mail.raw)
        if refused:
            raise self.smtp.partly_refused(mail.message_id, refused)

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in Sent (or about to be filed there)."""
        return self.imap.find_sent(message_id)

    def wait_for_mail(self, timeout: float) -> bool:
        """Wait with IDLE when the server has it (else poll) until new mail or timeout."""
        return self.imap.wait_for_mail(timeout)

    def check(self) -> list[str]:
        """Log in to IMAP and SMTP and return one line per folder the bot uses, and SMTP's."""
        return [*self.imap.check(), self.smtp.check()]

    def close(self) -> None:
        """File any pending Sent copies, log out and drop the connection; reuse reconnects."""
        self.imap.close()


def _secrets(
    environ: Mapping[str, str], password_env: str | None, token_env: str | None
) -> tuple[str | None, str | None]:
    """Return the (password, OAuth2 token) of one login: the token when a variable names one.

    These are the variables missing_secrets asks for; one that is not set gives an empty
    secret, which the server refuses with a message naming it, rather than another login.
    """
    if token_env:
        return None, environ.get(token_env, "")
    return (environ.get(password_env, "") if password_env else None), None
