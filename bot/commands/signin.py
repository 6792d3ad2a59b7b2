"""Signing in to the cockpit: a single-use emailed link, or the council's OpenID Connect."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select

from bot.commands.base import CommandError, Context, Role, refuse, require
from bot.commands.people import web_actor
from bot.kernel import audit
from bot.kernel.receipts import receipt_seen, remember_receipt
from bot.kernel.signing import LinkRefused, sign, verify
from bot.mail.notify import notify
from bot.store.models import OutboxMessage

# How long an emailed sign-in link works, and how many one address may be sent in that time.
LINK_LIFETIME = timedelta(minutes=15)
LINKS_PER_LIFETIME = 3
STRANGER = ("Sorry, this cockpit is only for the partnership's business manager, its statutory"
            " partners' leads and deputies, and the readers it names. Ask the business manager"
            " if you should have access.")


@dataclass(frozen=True)
class SendSignInLink:
    """Email a sign-in link to an address; the link points at base_url."""

    address: str
    base_url: str


def send_signin_link(context: Context, request: SendSignInLink) -> None:
    """Queue a single-use sign-in link to a person the config names; strangers are refused."""
    session, config, now = context.session, context.config, context.now
    address = request.address.strip().lower()
    person = web_actor(config, address)
    if person is None:
        refuse(context, "sign-in", STRANGER)
    recent = session.exec(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.purpose == "signin_link", OutboxMessage.recipients == address,
        col(OutboxMessage.created_at) > now - LINK_LIFETIME)).one()
    if recent >= LINKS_PER_LIFETIME:
        raise CommandError(f"{LINKS_PER_LIFETIME} sign-in links were sent to {address} in the"
                           " last 15 minutes: use the newest, or ask again in a few minutes")
    nonce, link = _new_link(context, address, request.base_url)
    notify(session, config, "signin_link", to=[address], key=f"signin:{nonce}", now=now,
           values=dict(link=link, expires=now + LINK_LIFETIME,
                       partnership=config.settings.partnership.name))
    audit.record(session, config.settings.partnership.key, person.who, "signin_link_sent", now)


def signin_link_for(context: Context, request: SendSignInLink) -> str:
    """Make a sign-in link for someone without emailing it (the operator, for the demo)."""
    require(context, frozenset({Role.OPERATOR}), "sign-in-link",
            "Sorry, only whoever runs rrbot on the server can make sign-in links.")
    if web_actor(context.config, request.address) is None:
        raise CommandError(f"{request.address} is not someone the cockpit knows")
    return _new_link(context, request.address.strip().lower(), request.base_url)[1]


def _new_link(context: Context, address: str, base_url: str) -> tuple[str, str]:
    nonce = secrets.token_urlsafe(16)
    token = sign(context.session, "signin", {"a": address, "n": nonce},
                 context.now + LINK_LIFETIME)
    return nonce, f"{base_url}/sign-in/link/{token}"


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: their address (the session keeps it) and the audit trail's name."""

    address: str
    who: str


def redeem_signin_link(context: Context, token: str) -> SignedIn:
    """Sign in with an emailed link, once; say who it signs in."""
    session, config, now = context.session, context.config, context.now
    try:
        claims = verify(session, "signin", token, now)
    except LinkRefused as exc:
        raise CommandError(f"{exc}: ask for a new sign-in link") from None
    used = f"signin:{claims['n']}"
    if receipt_seen(session, used):
        raise CommandError("this sign-in link has been used already: ask for a new one")
    remember_receipt(session, config.settings.partnership.key, used, now, None)
    return signed_in(context, str(claims["a"]), "email link")


def signed_in(context: Context, address: str, how: str) -> SignedIn:
    """Audit a sign-in by someone the config names, and say who; refuse anyone else."""
    address = address.strip().lower()
    person = web_actor(context.config, address)
    if person is None:
        refuse(context, "sign-in", STRANGER)
    audit.record(context.session, context.config.settings.partnership.key, person.who,
                 "signed_in", context.now, how=how)
    return SignedIn(address, person.who)
