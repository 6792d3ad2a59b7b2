"""A configuration for `rrbot run` on the test Dovecot and SMTP servers (tests and bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    """Write the example config with the mailbox on IMAP/SMTP and every person on Dovecot."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, role in EXAMPLE_ADDRESSES.items():
        text = text.replace(f'"{old}"', f'"{people[role]}"')
    start_at, end_at = text.index("[mailbox.imap]"), text.index("[mailbox.graph]")
    text = (text[:start_at] + text[end_at:]).replace('backend = "maildir"', 'backend = "imap"')
    text = text.replace('trusted_authserv_id = "mx.exampleshire.example"',
                        'trusted_authserv_id = "smtp.rrbot.test"')
    text = text.replace("health_port = 8765", f"health_port = {health_port}")
    text = text.replace("poll_seconds = 60", "poll_seconds = 5")
    account = (f'username = "{people["bot"]}"\npassword_env = "TEST_RUN_PW"\n'
               f'ca_file = "{servers.ca_file}"\n')
    text += (f'\n[mailbox.imap]\nhost = "{servers.host}"\nport = {servers.imaps_port}\n'
             f'security = "ssl"\nuse_idle = {"true" if use_idle else "false"}\n{account}'
             f'[mailbox.smtp]\nhost = "{servers.host}"\nport = {servers.smtp_port}\n'
             f'security = "starttls"\n{account}')
    config = folder / "config.toml"
    config.write_text(text, encoding="utf-8")
    return config


def referral(people: dict[str, str], number: int = 0) -> bytes:
    """Write a referral from the GP lead, with our boundary's DMARC verdict on top."""
    raw = (ROOT / "tests" / "corpus" / "referral_docx_gp.eml").read_bytes()
    raw = raw[raw.index(b"From: "):].replace(b"lee.safeguarding@gp.example",
                                             people["referrer"].encode())
    raw = raw.replace(b"Message-ID: <", f"Message-ID: <n{number}.".encode(), 1)
    domain = people["referrer"].rpartition("@")[2]
    verdict = f"Authentication-Results: smtp.rrbot.test; dmarc=pass header.from={domain}\r\n"
    return verdict.encode() + raw
