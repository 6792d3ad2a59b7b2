"""Who is asking: the actor for the server's command line, a chat user or an email sender."""

from __future__ import annotations

from bot.ballots.members import member_by_email, member_by_slack_user
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
