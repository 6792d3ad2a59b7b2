"""Alembic migrations of the bot's database, run by `rrbot db upgrade` and at start-up."""
