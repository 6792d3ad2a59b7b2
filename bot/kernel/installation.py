"""The installation's secret: made at first start, kept in the database, keys our Message-IDs."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.store.db import transaction
from bot.store.models import InstallationSecret

MESSAGE_ID_KEY = "message_id_key"


def installation_secret(session: Session) -> bytes:
    """Return the secret that keys our Message-IDs, making it if this is the first start.

    It is read once per transaction: a batch of actions queues many messages in one.
    """
    known: bytes | None = session.info.get(MESSAGE_ID_KEY)
    if known is None:
        known = session.info[MESSAGE_ID_KEY] = _read_or_make(session)
    return known


def _read_or_make(session: Session) -> bytes:
    row = session.get(InstallationSecret, MESSAGE_ID_KEY)
    if row is None:
        try:
            # A savepoint, so that another process making it first leaves this one's
            # transaction usable; its secret is then the one read.
            with session.begin_nested():
                row = InstallationSecret(name=MESSAGE_ID_KEY, value=secrets.token_hex(32))
                session.add(row)
        except IntegrityError:
            row = session.get_one(InstallationSecret, MESSAGE_ID_KEY)
    return bytes.fromhex(row.value)


def ensure_installation_secret(database: Engine) -> None:
    """Make the installation's secret at first start (another process may make it first)."""
    try:
        with transaction(database) as session:
            installation_secret(session)
    except IntegrityError:
        pass
