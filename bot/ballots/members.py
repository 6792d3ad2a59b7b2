"""The partners' members: each organisation's lead and deputies, by Slack id, email or name."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config

# How a partner is named in chat: the organisation's role, never a person or a family.
PARTNER_LABELS = {"local_authority": "Local Authority", "police": "Police", "health": "Health"}


class VoteRefused(ValueError):
    """A vote that cannot be counted (bad choice, missing rationale, not a member)."""


@dataclass(frozen=True)
class Member:
    """A configured lead or deputy of one statutory partner organisation."""

    partner_key: str
    role: str
    name: str
    email: str
    slack_user_id: str | None


def members(config: Config) -> list[Member]:
    """Every configured lead and deputy, partner by partner."""
    found = []
    for key, partner in config.settings.partners.by_key().items():
        found.append(Member(key, "lead", partner.lead.name, partner.lead.email,
                            partner.lead.slack_user_id))
        found.extend(Member(key, "deputy", deputy.name, deputy.email, deputy.slack_user_id)
                     for deputy in partner.deputies)
    return found


def member_by_slack_user(config: Config, user_id: str) -> Member | None:
    """Return the member with that Slack user id, if any."""
    return next((m for m in members(config) if m.slack_user_id and m.slack_user_id == user_id),
                None)


def member_by_email(config: Config, address: str) -> Member | None:
    """Return the member with that email address, if any (addresses compare caseless)."""
    wanted = address.strip().lower()
    return next((m for m in members(config) if m.email.lower() == wanted), None)


def member_by_name(config: Config, partner_key: str, name: str) -> Member:
    """Return the partner's member with that name or email, or raise VoteRefused."""
    if partner_key not in PARTNER_LABELS:
        raise VoteRefused(f"no partner {partner_key!r} (choose {', '.join(PARTNER_LABELS)})")
    wanted = name.strip().lower()
    for member in members(config):
        if member.partner_key == partner_key and wanted in (member.name.lower(),
                                                             member.email.lower()):
            return member
    known = ", ".join(m.name for m in members(config) if m.partner_key == partner_key)
    raise VoteRefused(f"{name!r} is not a member of {partner_key} (members: {known})")
