"""What every `rrbot` sub-command shares: options, one-line failures, a command's transaction."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError, OperationalError

from bot.commands.base import Actor, CommandError, Context
from bot.config import Config, ConfigError, load_config
from bot.process.working_days import parse_instant
from bot.service.wiring import base_folder, database_url, open_database
from bot.store.db import transaction

# Piped output gets a width a table fits in rather than the 80 columns rich assumes.
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)

# Exit status for input the bot cannot use (a broken config, a bad date, a refused command).
EXIT_BAD_INPUT = 2

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A configuration file (see config.example.toml).")
]
RequiredConfig = Annotated[
    Path, typer.Option("--config", help="A configuration file (see config.example.toml).")
]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this instant (ISO 8601); default: now."),
]
CaseArgument = Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")]


def fail(*lines: str) -> NoReturn:
    """Print each problem on one line to stderr and exit with status 2."""
    for line in lines:
        errors.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def load(path: Path) -> Config:
    """Load a configuration file, or fail with one line per problem."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(*exc.problems)


def read_instant(text: str | None, option: str) -> datetime:
    """Read an option's instant (no offset means London time); none given means now."""
    if not text:
        return datetime.now(UTC)
    try:
        return parse_instant(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


@contextmanager
def command_context(
    loaded: Config, actor: Actor, now: datetime, database: DatabaseEngine | None = None
) -> Iterator[Context]:
    """Run one command in its own transaction; a refused command is one line and exit 2."""
    try:
        with database_errors(loaded):
            with transaction(database or open_database(loaded)) as session:
                yield Context(session, loaded, actor, now)
    except CommandError as exc:
        fail(str(exc))


def database_label(loaded: Config) -> str:
    """Name the configured database for people: the URL as used, without its password."""
    url = database_url(loaded)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


@contextmanager
def database_errors(loaded: Config) -> Iterator[None]:
    """Turn a database or Maildir folder that cannot be reached or made into one line, exit 2."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        reason = _first_line(exc)
        fail(f"database {database_label(loaded)}: {_without_password(loaded, reason)}")
    except DatabaseError as exc:
        # Only the bare DatabaseError is a file that is not a database (or a damaged one); its
        # kinds (a broken constraint, say) are the bot's own faults and keep their traceback.
        if type(exc) is not DatabaseError:
            raise
        fail(f"database {database_label(loaded)}: {_first_line(exc)}; restore the file from"
             " a backup, or set [database] url to the bot's database")
    except ArgumentError:
        if _parses(database_url(loaded)):
            raise
        fail(f"database \"{database_label(loaded)}\": not a database URL; set [database] url,"
             " e.g. sqlite:////var/lib/rrbot/rrbot.sqlite3")
    except OSError as exc:
        # make_engine creates a SQLite file's folder, open_mailbox the Maildir's: a folder that
        # cannot be made (a read-only /etc, say) is the config's problem, not a crash.
        made = exc.filename
        folder = _sqlite_folder(loaded)
        if made is not None and folder is not None and folder.is_relative_to(made):
            fail(f"database {database_label(loaded)}: cannot create the folder {made}:"
                 f" {exc.strerror or exc}; set [database] url to a folder the bot may write")
        maildir = base_folder(loaded) / loaded.settings.mailbox.maildir.path
        if (made is not None and loaded.settings.mailbox.backend == "maildir"
                and maildir.is_relative_to(made)):
            fail(f"mailbox folder {maildir}: cannot create {made}: {exc.strerror or exc};"
                 " set [mailbox.maildir] path to a folder the bot may write")
        raise


def _first_line(exc: DatabaseError | InterfaceError) -> str:
    error = exc.orig if exc.orig is not None else exc
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _sqlite_folder(loaded: Config) -> Path | None:
    try:
        parsed = make_url(database_url(loaded))
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).parent


def _parses(url: str) -> bool:
    try:
        make_url(url)
    except ArgumentError:
        return False
    return True


def _without_password(loaded: Config, text: str) -> str:
    try:
        password = make_url(database_url(loaded)).password
    except ArgumentError:
        return text
    return text.replace(str(password), "***") if password else text
