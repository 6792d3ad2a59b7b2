"""A configuration for `rrbot run` on the test Dovecot and SMTP servers (tests and bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import EMBEDDED_DATABASE, config_document, exactly, write_config

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "secret-run"
ROLES = ("bot", "referrer", "manager", "la_lead", "la_deputy", "police", "health")
# Each address of the example config, by the role its stand-in on Dovecot plays.
EXAMPLE_ADDRESSES = {
    "lee.safeguarding@gp.example": "referrer", "sam.example@exampleshire.example": "manager",
    "alex.director@exampleshire.example": "la_lead", "jo.deputy@exampleshire.example":
    "la_deputy", "chris.superintendent@police.example": "police",
    "pat.nurse@icb.example": "health", "rapidreview@exampleshire.example": "bot",
}


def make_people(servers: Any) -> dict[str, str]:
    """Give every role its own mailbox on the test Dovecot."""
    return {role: servers.new_user(role.replace("_", ""), password=PASSWORD) for role in ROLES}


def write_imap_config(folder: Path, servers: Any, people: dict[str, str], health_port: int,
                      use_idle: bool = True) -> Path:
    """Write the example config with the mailbox on IMAP/SMTP and every person on Dovecot.

    The database stays the example's embedded default, in var/ beside the file.
    """
    account = {"username": people["bot"], "password_env": "TEST_RUN_PW",
               "ca_file": str(servers.ca_file)}
    document = config_document(database_url=EMBEDDED_DATABASE, service={
        "health_port": health_port,
    }, mailbox={
        "backend": "imap", "trusted_authserv_id": "smtp.rrbot.test", "poll_seconds": 5,
        "imap": exactly({"host": servers.host, "port": servers.imaps_port, "security": "ssl",
                         "use_idle": use_idle, **account}),
        "smtp": exactly({"host": servers.host, "port": servers.smtp_port,
                         "security": "starttls", **account}),
    })
    # Every address of the example becomes its role's stand-in on Dovecot.
    document = _replace_addresses(document, {old: people[role]
                                             for old, role in EXAMPLE_ADDRESSES.items()})
    return write_config(folder, document=document)


def _replace_addresses(value: Any, addresses: dict[str, str]) -> Any:
    """Return value with every string that is one of the addresses replaced by its new one."""
    if isinstance(value, dict):
        return {key: _replace_addresses(item, addresses) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_addresses(item, addresses) for item in value]
    if isinstance(value, str):
        return addresses.get(value, value)
    return value


def referral(people: dict[str, str], number: int = 0) -> bytes:
    """Write a referral from the GP lead, with our boundary's DMARC verdict on top."""
    raw = (ROOT / "tests" / "corpus" / "referral_docx_gp.eml").read_bytes()
    raw = raw[raw.index(b"From: "):].replace(b"lee.safeguarding@gp.example",
                                             people["referrer"].encode())
    raw = raw.replace(b"Message-ID: <", f"Message-ID: <n{number}.".encode(), 1)
    domain = people["referrer"].rpartition("@")[2]
    verdict = f"Authentication-Results: smtp.rrbot.test; dmarc=pass header.from={domain}\r\n"
    return verdict.encode() + raw
