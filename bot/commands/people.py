"""Who is asking: the actor for the server's command line, a chat user or an email sender."""

from __future__ import annotations

from bot.ballots.members import PARTNER_LABELS, member_by_email, member_by_slack_user, members
from bot.commands.base import Actor, Interface, Role
from bot.config import Config

# The audit trail's name for whoever runs `rrbot` on the server.
OPERATOR = Actor("cli", Role.OPERATOR, Interface.CLI)


def business_manager_at_cli(config: Config) -> Actor:
    """Name the operator as the business manager (a vote given by phone, a reopened ballot)."""
    name = config.settings.business_manager.name
    return Actor(f"business manager {name}", Role.OPERATOR, Interface.CLI)


def chat_actor(config: Config, user_id: str, in_workspace: bool) -> Actor:
    """Say who a chat user is: the business manager, a partner member, a reader or an outsider."""
    # Someone from another workspace is no member, whatever user id they carry.
    member = member_by_slack_user(config, user_id) if in_workspace else None
    if not in_workspace:
        role = Role.OUTSIDER
    elif user_id and user_id == config.settings.business_manager.slack_user_id:
        role = Role.BUSINESS_MANAGER
    elif member is not None:
        role = Role.PARTNER_MEMBER
    else:
        role = Role.READER
    return Actor(f"slack:{user_id}", role, Interface.CHAT, member=member, chat_user=user_id)


def email_actor(config: Config, address: str) -> Actor:
    """Say who a verified email sender is: a partner member, or a reader."""
    member = member_by_email(config, address)
    role = Role.PARTNER_MEMBER if member is not None else Role.READER
    return Actor(f"email:{address}", role, Interface.EMAIL, member=member)


def web_actor(config: Config, address: str) -> Actor | None:
    """Say who a signed-in cockpit user is, or None for someone the config does not name.

    The business manager may do everything, a partner lead or deputy reads cases and votes for
    their organisation, and the [web] readers read; everyone else is refused.
    """
    settings = config.settings
    wanted = address.strip().lower()
    if wanted == settings.business_manager.email.lower():
        return Actor(f"business manager {settings.business_manager.name} (web)",
                     Role.BUSINESS_MANAGER, Interface.WEB)
    member = member_by_email(config, wanted)
    if member is not None:
        return Actor(f"{member.name} (web)", Role.PARTNER_MEMBER, Interface.WEB, member=member)
    reader = next((person for person in settings.web.readers
                   if person.email.lower() == wanted), None)
    if reader is not None:
        return Actor(f"{reader.name} (web)", Role.READER, Interface.WEB)
    return None


# The actor of someone not signed in (asking for a sign-in link, following a vote link).
VISITOR = Actor("web:visitor", Role.OUTSIDER, Interface.WEB)


def voter_choices(config: Config) -> list[tuple[str, str]]:
    """Every partner lead and deputy as "partner|email" and "Name (Police lead)", to choose."""
    return [(f"{m.partner_key}|{m.email}", f"{m.name} ({PARTNER_LABELS[m.partner_key]} {m.role})")
            for m in members(config)]
