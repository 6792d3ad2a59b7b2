"""Signed, expiring tokens for links in emails (sign-in, votes), keyed by a stored secret."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import Session

from bot.store.models import CursorState

# Where the partnership's signing secret is kept: made on first use, so no config key holds it.
SECRET_KEY = "web:signing-secret"


class LinkRefused(ValueError):
    """A link that is forged, for something else, or out of date; str() says which in one line."""


def signing_secret(session: Session) -> str:
    """Return the secret that signs links and cookies, making and storing it the first time."""
    stored = session.get(CursorState, SECRET_KEY)
    if stored is None:
        stored = CursorState(key=SECRET_KEY, value=secrets.token_urlsafe(48))
        session.add(stored)
        session.flush()
    return stored.value


def sign(session: Session, purpose: str, claims: dict[str, Any], expires_at: datetime) -> str:
    """Sign claims for one purpose (e.g. "vote"), valid until expires_at."""
    serializer = URLSafeSerializer(signing_secret(session), salt=purpose)
    return str(serializer.dumps({**claims, "exp": int(expires_at.timestamp())}))


def verify(session: Session, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """Return a token's claims, or raise LinkRefused if it is forged, for another purpose or old."""
    serializer = URLSafeSerializer(signing_secret(session), salt=purpose)
    try:
        claims = serializer.loads(token)
    except BadSignature:
        raise LinkRefused("this link was not sent by the partnership, or is cut") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise LinkRefused("this link is not one the partnership sent")
    if datetime.fromtimestamp(claims["exp"], UTC) <= now:
        raise LinkRefused("this link has expired")
    return claims
