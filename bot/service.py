"""Wiring: build the database, the mailbox adapter and the engine from a configuration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine as DatabaseEngine

from bot import audit
from bot.calendar import as_aware
from bot.config import Config
from bot.db import make_engine, transaction
from bot.engine import Engine
from bot.mailbox import CursorStore, Mailbox
from bot.migrate import upgrade
from bot.models import CursorState


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


def database_url(config: Config) -> str:
    """Return the database URL, a relative SQLite path taken from the config file's folder."""
    url = config.settings.database.url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str(base_folder(config) / url.removeprefix(prefix))
    return url


def open_database(config: Config) -> DatabaseEngine:
    """Create the database engine and bring its schema up to date."""
    database = make_engine(database_url(config))
    upgrade(database)
    return database


def open_mailbox(config: Config, cursor_store: CursorStore) -> Mailbox:
    """Build the configured mailbox adapter (imported here, at the edge, only when chosen)."""
    settings = config.settings.mailbox
    if settings.backend == "maildir":
        from bot.adapters.mail.maildir import MaildirMailbox

        root = base_folder(config) / settings.maildir.path
        root.mkdir(parents=True, exist_ok=True)
        return MaildirMailbox(root, settings.address)
    raise NotImplementedError(f"the {settings.backend} mailbox is not wired up yet")


def build_engine(config: Config, mailbox: Mailbox | None = None) -> Engine:
    """Wire the engine for a configuration; tests pass their own mailbox."""
    database = open_database(config)
    if mailbox is None:
        mailbox = open_mailbox(config, DatabaseCursorStore(database, "mailbox"))
    return Engine(config, database, mailbox)


def record_config_load(engine: Engine, now: datetime) -> None:
    """Audit that a configuration was loaded (once per command or process start)."""
    settings = engine.config.settings
    with transaction(engine.database) as session:
        audit.record(session, settings.partnership.key, "bot", "config_loaded", as_aware(now),
                     preset=engine.config.preset.name, source=str(engine.config.source or ""))
