"""Wiring: build the database, the mailbox adapter and the engine from a configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy.engine import make_url

from bot.config import Config
from bot.engine.step import Engine
from bot.kernel import audit
from bot.kernel.chat import ChatChannel
from bot.kernel.dispatch import RetryPolicy
from bot.kernel.installation import ensure_installation_secret
from bot.kernel.mailbox import CursorStore, Mailbox
from bot.process.working_days import as_aware
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import CursorState


class DatabaseCursorStore:
    """Adapter state kept in the database, so a restart resumes where it stopped."""

    def __init__(self, database: DatabaseEngine, prefix: str) -> None:
        self.database = database
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        """Return the value stored under key, or None."""
        with transaction(self.database) as session:
            row = session.get(CursorState, f"{self.prefix}:{key}")
            return row.value if row else None

    def set(self, key: str, value: str) -> None:
        """Store value under key."""
        with transaction(self.database) as session:
            session.merge(CursorState(key=f"{self.prefix}:{key}", value=value))


def base_folder(config: Config) -> Path:
    """Return the folder relative paths in the config are read from: the config file's."""
    return config.source.resolve().parent if config.source else Path.cwd()


def database_url(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """Return the database URL to connect with, from [database] and the environment.

    A relative SQLite path is taken from the config file's folder, and a server's password
    from the environment variable that [database] password_env names.
    """
    url = config.settings.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str(base_folder(config) / url.removeprefix(prefix))
    variable = config.settings.database.password_env
    password = (os.environ if environ is None else environ).get(variable) if variable else None
    if password:
        return make_url(url).set(password=password).render_as_string(hide_password=False)
    return url


def open_database(config: Config) -> DatabaseEngine:
    """Create the database engine and bring its schema up to date."""
    database = make_engine(database_url(config))
    upgrade(database)
    # The first start makes the secret that keys the bot's Message-IDs.
    ensure_installation_secret(database)
    return database


def open_mailbox(
    config: Config, cursor_store: CursorStore, environ: Mapping[str, str] | None = None
) -> Mailbox:
    """Build the configured mailbox adapter (imported here, at the edge, only when chosen)."""
    settings = config.settings.mailbox
    secrets = os.environ if environ is None else environ
    if settings.backend == "imap" and settings.imap and settings.smtp:
        from bot.adapters.mail.imap_smtp import ImapSmtpMailbox

        return ImapSmtpMailbox.from_settings(settings, secrets)
    if settings.backend == "graph" and settings.graph:
        from bot.adapters.mail.graph import GraphMailbox

        return GraphMailbox.from_settings(settings, cursor_store, secrets)
    if settings.backend == "ews" and settings.ews:
        from bot.adapters.mail.ews import EwsMailbox

        ews = settings.ews
        return EwsMailbox(
            endpoint=ews.endpoint, primary_smtp_address=settings.address,
            username=ews.username, password=_secret(secrets, ews.password_env),
            auth_type=ews.auth_type, access_type=ews.access_type,
            poll_seconds=settings.poll_seconds, ca_file=ews.ca_file,
        )
    from bot.adapters.mail.maildir import MaildirMailbox

    root = base_folder(config) / settings.maildir.path
    root.mkdir(parents=True, exist_ok=True)
    return MaildirMailbox(root, settings.address)


def _secret(environ: Mapping[str, str], variable: str | None) -> str | None:
    return environ.get(variable) if variable else None


def build_engine(
    config: Config, mailbox: Mailbox | None = None, chat: ChatChannel | None = None
) -> Engine:
    """Wire the engine for a configuration; tests pass their own mailbox and chat."""
    database = open_database(config)
    if mailbox is None:
        mailbox = open_mailbox(config, DatabaseCursorStore(database, "mailbox"))
    if chat is None:
        chat = open_chat(config)
    policy = RetryPolicy(lease_seconds=config.settings.service.outbox_lease_seconds)
    return Engine(config, database, mailbox, retry_policy=policy, chat=chat)


def open_chat(config: Config, environ: Mapping[str, str] | None = None) -> ChatChannel:
    """Build the configured chat adapter (imported here, at the edge, only when chosen)."""
    settings = config.settings.chat
    if settings.backend == "slack" and settings.slack:
        from bot.adapters.chat.slack import SlackChat

        secrets = os.environ if environ is None else environ
        return SlackChat.from_settings(settings.slack, secrets)
    from bot.adapters.chat.console import ConsoleChat

    return ConsoleChat()


def record_config_load(engine: Engine, now: datetime) -> None:
    """Audit that a configuration was loaded (once per command or process start)."""
    settings = engine.config.settings
    with transaction(engine.database) as session:
        audit.record(session, settings.partnership.key, "bot", "config_loaded", as_aware(now),
                     preset=engine.config.preset.name, source=str(engine.config.source or ""))
