"""The test servers themselves: PostgreSQL per-test databases, SMTP delivery and refusals."""

from __future__ import annotations

import smtplib
import time

import psycopg
import pytest

from tests.adapters.mail.harness import make_message
from tests.servers.fixtures import MailServers


def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        connection.execute("CREATE TABLE review (id serial PRIMARY KEY, child text)")
        connection.execute("INSERT INTO review (child) VALUES ('A')")
        row = connection.execute("SELECT count(*) FROM review").fetchone()
    assert row == (1,)


def test_each_test_gets_its_own_database(postgres_url: str) -> None:
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_smtp_delivers_into_the_users_maildir(mail_servers: MailServers) -> None:
    address = mail_servers.new_user("lead")
    raw = make_message("Delivered", "sender@outside.test", address)

    mail_servers.deliver(address, raw)

    [stored] = mail_servers.messages(address)
    assert stored.endswith(raw)
    assert stored.startswith(b"Return-Path: <sender@outside.test>\r\nReceived: ")


def test_smtp_refuses_other_domains_and_unknown_users(mail_servers: MailServers) -> None:
    raw = make_message("Refused", "sender@outside.test", "someone@elsewhere.test")
    with smtplib.SMTP(mail_servers.host, mail_servers.smtp_port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as foreign:
            client.sendmail("sender@outside.test", ["someone@elsewhere.test"], raw)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
            client.sendmail("sender@outside.test", ["nobody@partnership.test"], raw)
    assert foreign.value.recipients["someone@elsewhere.test"][0] == 550
    assert unknown.value.recipients["nobody@partnership.test"][0] == 550


def test_stop_and_start_imap(mail_servers: MailServers) -> None:
    started = time.monotonic()
    mail_servers.stop_imap()
    mail_servers.start_imap()
    assert mail_servers.dovecot.is_running()
    assert time.monotonic() - started < 5
