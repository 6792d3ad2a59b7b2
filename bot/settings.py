"""The configuration file's schema: every section and key, validated, with lookups of who is who."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bot.process.preset import Strict, parse_clock

EMAIL_PATTERN = r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


DOMAIN_PATTERN = r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"


NATIONAL_PANEL_ADDRESS = "Mailbox.NationalReviewPanel@education.gov.uk"


class Person(Strict):
    """Someone the bot writes to or hears from."""

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=EMAIL_PATTERN)
    slack_user_id: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,}$")


class Partner(Strict):
    """One statutory partner organisation: its lead and nominated deputies."""

    name: str = Field(min_length=1, max_length=200)
    lead: Person
    deputies: list[Person] = Field(default_factory=list)


class Partners(Strict):
    """The three statutory safeguarding partners."""

    local_authority: Partner
    police: Partner
    health: Partner

    def by_key(self) -> dict[str, Partner]:
        """Return the partners keyed local_authority, police and health."""
        return {"local_authority": self.local_authority, "police": self.police,
                "health": self.health}


class Agency(Strict):
    """An organisation that may hold information about the child or family."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    name: str = Field(min_length=1, max_length=300)
    contacts: list[Person] = Field(min_length=1)
    escalation: Person | None = None
    alternate: Person | None = None
    domains: list[str] = Field(default_factory=list)
    always_ask: bool = False

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        import re

        for domain in domains:
            if not re.match(DOMAIN_PATTERN, domain):
                raise ValueError(f"{domain!r} is not a mail domain like \"nhs.net\"")
        return [domain.lower() for domain in domains]


class PartnershipSettings(Strict):
    """Who the partnership is and when it works."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)
    name: str = Field(min_length=1, max_length=200)
    signature: str = ""
    case_reference_prefix: str = Field(default="RR", pattern=r"^[A-Z]{1,6}$")
    closure_dates: list[date] = Field(default_factory=list)
    working_hours_start: time = time(9, 0)
    working_hours_end: time = time(17, 0)

    _clocks = field_validator("working_hours_start", "working_hours_end", mode="before")(
        parse_clock
    )

    @model_validator(mode="after")
    def _hours_in_order(self) -> PartnershipSettings:
        if self.working_hours_start >= self.working_hours_end:
            raise ValueError("working_hours_start must be before working_hours_end")
        return self


class DatabaseSettings(Strict):
    """Where the bot keeps its truth."""

    url: str = "sqlite:///var/rrbot.sqlite3"
    password_env: str | None = None


class MaildirSettings(Strict):
    """A local folder of Maildirs: the embedded default that needs no server."""

    path: str = "var/mail"


class ImapSettings(Strict):
    """An IMAP server for reading the partnership mailbox."""

    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls"] = "ssl"
    username: str
    password_env: str | None = "RRBOT_IMAP_PASSWORD"
    oauth2_token_env: str | None = None
    ca_file: str | None = None
    inbox: str = "INBOX"
    sent_folder: str = "Sent"
    use_idle: bool = True


class SmtpSettings(Strict):
    """An SMTP server for sending from the partnership mailbox.

    The account and CA file default to the IMAP ones: a key left out here is read from
    [mailbox.imap], so only a relay with an account of its own needs them.
    """

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["ssl", "starttls"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    oauth2_token_env: str | None = None
    ca_file: str | None = None
    save_to_sent: bool = True

    def has_own_secret(self) -> bool:
        """Say whether SMTP logs in with a password or token of its own rather than IMAP's."""
        return bool(self.password_env or self.oauth2_token_env)


class GraphSettings(Strict):
    """Exchange Online through Microsoft Graph (client credentials on a shared mailbox)."""

    tenant_id: str
    client_id: str
    client_secret_env: str = "RRBOT_GRAPH_CLIENT_SECRET"
    authority_url: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"


class EwsSettings(Strict):
    """On-premises Exchange through EWS."""

    endpoint: str = Field(pattern=r"^https?://")
    username: str
    password_env: str = "RRBOT_EWS_PASSWORD"
    auth_type: Literal["NTLM", "basic"] = "NTLM"
    access_type: Literal["delegate", "impersonation"] = "delegate"
    ca_file: str | None = None

    @field_validator("auth_type", mode="before")
    @classmethod
    def _on_premises_auth(cls, value: object) -> object:
        # OAuth 2.0 is how Exchange Online is reached, and Exchange Online is reached by Graph.
        if isinstance(value, str) and value.lower().startswith("oauth"):
            raise ValueError('OAuth 2.0 is for Exchange Online, which the bot reaches through '
                             'Microsoft Graph: set [mailbox] backend = "graph"')
        return value


class MailboxSettings(Strict):
    """The partnership mailbox and the backend that reaches it."""

    backend: Literal["maildir", "imap", "graph", "ews"] = "maildir"
    address: str = Field(pattern=EMAIL_PATTERN)
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    poll_seconds: int = Field(default=60, ge=5, le=3600)
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    trusted_authserv_id: str | None = Field(default=None, pattern=DOMAIN_PATTERN)
    unauthenticated: Literal["flag", "accept"] = "flag"
    # Whose Authentication-Results count (bot/mail/boundary.py): a gateway naming itself
    # (trusted_authserv_id), Exchange Online Protection, or no boundary at all.
    boundary: Literal["exchange-online", "authserv-id", "none"] = "authserv-id"
    # The council's own relay hosts between the boundary and the mailbox ("*.x" for a domain).
    internal_relays: list[str] = Field(default_factory=list)
    maildir: MaildirSettings = Field(default_factory=MaildirSettings)
    imap: ImapSettings | None = None
    smtp: SmtpSettings | None = None
    graph: GraphSettings | None = None
    ews: EwsSettings | None = None

    @field_validator("internal_relays")
    @classmethod
    def _relay_names(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", host):
                raise ValueError(f"{host!r} is not a host name (or *.domain)")
        return value

    @model_validator(mode="after")
    def _backend_configured(self) -> MailboxSettings:
        needed = {"imap": ("imap", "smtp"), "graph": ("graph",), "ews": ("ews",)}
        for section in needed.get(self.backend, ()):
            if getattr(self, section) is None:
                raise ValueError(f"backend {self.backend!r} needs a [mailbox.{section}] table")
        return self


class SlackSettings(Strict):
    """A Slack app in the partnership's workspace."""

    mode: Literal["socket", "http"] = "socket"
    team_id: str = Field(pattern=r"^T[A-Z0-9]{2,}$")
    channel_id: str = Field(pattern=r"^[CG][A-Z0-9]{2,}$")
    bot_token_env: str = "RRBOT_SLACK_BOT_TOKEN"
    app_token_env: str = "RRBOT_SLACK_APP_TOKEN"
    signing_secret_env: str = "RRBOT_SLACK_SIGNING_SECRET"


class ChatSettings(Strict):
    """Where partners vote: Slack, or the console for the embedded default."""

    backend: Literal["console", "slack"] = "console"
    slack: SlackSettings | None = None

    @model_validator(mode="after")
    def _backend_configured(self) -> ChatSettings:
        if self.backend == "slack" and self.slack is None:
            raise ValueError("backend 'slack' needs a [chat.slack] table")
        return self


class AgencyRequestSettings(Strict):
    """What goes with an information request to an agency."""

    form_path: str | None = None
    # The partnership's forms (bundled names or paths), filled in for each agency from the
    # referral and attached to its request; the months before Day 0 its period covers.
    forms: list[str] = Field(default_factory=list)
    period_months: int = Field(default=12, ge=0, le=240)
    meeting_start: time = time(10, 0)
    meeting_minutes: int = Field(default=120, ge=15, le=600)
    meeting_location: str = "Microsoft Teams (link to follow)"

    _clock = field_validator("meeting_start", mode="before")(parse_clock)


class PapersSettings(Strict):
    """The case papers the bot builds: the combined chronology and the draft report.

    The chronology's layout, the report template (a bundled name or a path), the review's
    chair who receives the chronology with the business manager, and the days with nothing
    recorded that make a gap.
    """

    chronology_layout: Literal["agency_per_row", "agency_per_column"] = "agency_per_row"
    report_template: str | None = None
    chair: Person | None = None
    gap_days: int = Field(default=90, ge=7, le=3650)


# The fields a referral form must fill in, by the names bot/cases/referral_form.py knows.
REFERRAL_FIELDS = (
    "child_name", "child_dob", "address", "incident_date", "agencies_involved", "reason",
    "referrer_name", "referrer_agency",
)


class IntakeSettings(Strict):
    """How referrals and agency returns are taken in: required fields, files kept."""

    required_fields: list[str] = Field(default_factory=lambda: [
        "child_name", "child_dob", "address", "incident_date", "agencies_involved", "reason",
    ])
    return_incomplete: bool = False
    documents_folder: str = "var/documents"
    allowed_attachment_types: list[str] = Field(
        default_factory=lambda: [".docx", ".pdf", ".xlsx", ".csv", ".txt"]
    )
    # Mail domains (the council's, NHS, police) whose authenticated senders may refer a child
    # without being named in the config; any other referral waits for the business manager.
    referrer_domains: list[str] = Field(default_factory=list)

    @field_validator("required_fields")
    @classmethod
    def _known_fields(cls, fields: list[str]) -> list[str]:
        unknown = [field for field in fields if field not in REFERRAL_FIELDS]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known: {', '.join(REFERRAL_FIELDS)}")
        return fields

    @field_validator("allowed_attachment_types")
    @classmethod
    def _suffixes(cls, suffixes: list[str]) -> list[str]:
        for suffix in suffixes:
            if not suffix.startswith(".") or len(suffix) < 2:
                raise ValueError(f"{suffix!r} is not a file suffix like \".docx\"")
        return [suffix.lower() for suffix in suffixes]

    @field_validator("referrer_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        for domain in domains:
            if "@" in domain or "." not in domain.strip(".") or not domain.isascii():
                raise ValueError(f"{domain!r} is not a mail domain like \"council.gov.uk\"")
        return [domain.strip().strip(".").lower() for domain in domains]

    def referrer_domain(self, address: str) -> str | None:
        """Return the referrer domain an address belongs to (itself or a subdomain), if any."""
        domain = address.strip().lower().rpartition("@")[2]
        for known in self.referrer_domains:
            if domain == known or domain.endswith("." + known):
                return known
        return None


class ServiceSettings(Strict):
    """How the long-running service logs and reports its health."""

    log_format: Literal["keyvalue", "json"] = "keyvalue"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8765, ge=0, le=65535)
    sweep_seconds: int = Field(default=60, ge=1, le=3600)
    outbox_lease_seconds: int = Field(default=60, ge=1, le=3600)
    mailbox_stale_minutes: float = Field(default=15, gt=0, le=1440)
    alert_email: str | None = Field(default=None, pattern=EMAIL_PATTERN)


class NationalPanelSettings(Strict):
    """The National Child Safeguarding Practice Review Panel's mailbox."""

    email: str = Field(default=NATIONAL_PANEL_ADDRESS, pattern=EMAIL_PATTERN)


class DigestSettings(Strict):
    """When the business manager's digests go out and how much of the child they name."""

    daily_at: time = time(8, 30)
    weekly_on_monday: bool = True
    child_identity: Literal["none", "initials", "full"] = "initials"
    amber_within_working_days: int = Field(default=1, ge=0, le=5)
    # Beyond this many open cases the daily digest lists only red and amber cases in full.
    list_cases_in_full: int = Field(default=50, ge=0)

    _clock = field_validator("daily_at", mode="before")(parse_clock)


RETENTION_PATTERN = r"^[1-9][0-9]{0,3} (day|week|month|year)s?$"


class RecordsSettings(Strict):
    """How long the records of a closed case are kept before `rrbot case purge` may remove them.

    Unset means keep for ever: nothing is purged until the partnership chooses a period.
    """

    retain_closed_cases_for: str | None = Field(default=None, pattern=RETENTION_PATTERN)


class OidcSettings(Strict):
    """A council's OpenID Connect provider (Microsoft Entra ID) for signing in to the cockpit."""

    issuer: str = Field(pattern=r"^https?://")
    client_id: str = Field(min_length=1)
    client_secret_env: str = "RRBOT_OIDC_CLIENT_SECRET"


class WebSettings(Strict):
    """The business manager's cockpit: where it listens, its public address, who may read it."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+[^/\s]$")
    readers: list[Person] = Field(default_factory=list)
    oidc: OidcSettings | None = None


class Settings(Strict):
    """The whole configuration file, before the process is resolved."""

    partnership: PartnershipSettings
    process: dict[str, Any] = Field(default_factory=lambda: {"preset": "oldham"})
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    mailbox: MailboxSettings
    chat: ChatSettings = Field(default_factory=ChatSettings)
    business_manager: Person
    national_panel: NationalPanelSettings = Field(default_factory=NationalPanelSettings)
    partners: Partners
    agencies: list[Agency] = Field(default_factory=list)
    agency_requests: AgencyRequestSettings = Field(default_factory=AgencyRequestSettings)
    papers: PapersSettings = Field(default_factory=PapersSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    def agency(self, agency_key: str) -> Agency:
        """Return the configured agency with that key, or raise ValueError naming the choices."""
        for candidate in self.agencies:
            if candidate.key == agency_key:
                return candidate
        known = ", ".join(a.key for a in self.agencies)
        raise ValueError(f"no agency {agency_key!r} is configured (known: {known})")

    def agency_for_sender(self, email: str) -> Agency | None:
        """Find the agency a sender belongs to: a named contact first, then a configured domain."""
        address = email.strip().lower()
        for candidate in self.agencies:
            people = [*candidate.contacts, candidate.escalation, candidate.alternate]
            if any(person and person.email.lower() == address for person in people):
                return candidate
        domain = address.rpartition("@")[2]
        for candidate in self.agencies:
            if any(domain == known or domain.endswith("." + known) for known in candidate.domains):
                return candidate
        return None

    def known_sender(self, address: str) -> str | None:
        """Describe who a configured address or agency domain is, or None for a stranger."""
        address = address.lower()
        if address == self.business_manager.email.lower():
            return "the business manager"
        if address == self.national_panel.email.lower():
            return "the National Panel"
        for key, partner in self.partners.by_key().items():
            for person in [partner.lead, *partner.deputies]:
                if person.email.lower() == address:
                    return f"a {key.replace('_', ' ')} partner member"
        agency = self.agency_for_sender(address)
        if agency is not None:
            return f"the agency {agency.key}"
        referrer = self.intake.referrer_domain(address)
        if referrer is not None:
            return f"a referrer at {referrer}"
        return None

    @model_validator(mode="after")
    def _unique_agencies(self) -> Settings:
        keys = [agency.key for agency in self.agencies]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"agency keys appear twice: {', '.join(repeated)}")
        return self
