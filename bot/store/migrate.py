"""Brings a database's schema up to date with Alembic, from inside the bot."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    """Point Alembic at the bot's migrations folder."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest revision (a new database gets every table)."""
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        # Each feature adds its own revision after 0001; "heads" applies every branch.
        command.upgrade(config, "heads")
        connection.commit()


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the difference between the models and the database."""
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
