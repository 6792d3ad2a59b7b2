"""Who an agency is: the configured ones, then the one-off agencies added from the cockpit."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from bot.config import Config
from bot.kernel import audit
from bot.settings import EMAIL_PATTERN, Agency, Person
from bot.store.models import OneOffAgency


def find_agency(session: Session, config: Config, agency_key: str) -> Agency:
    """Return the configured or one-off agency with that key, or raise ValueError."""
    for candidate in config.settings.agencies:
        if candidate.key == agency_key:
            return candidate
    stored = session.exec(select(OneOffAgency).where(
        OneOffAgency.partnership == config.settings.partnership.key,
        OneOffAgency.key == agency_key)).first()
    if stored is not None:
        return as_agency(stored)
    known = ", ".join(a.key for a in config.settings.agencies)
    raise ValueError(f"no agency {agency_key!r} is configured (known: {known})")


def agency_for_sender(session: Session, config: Config, email: str) -> Agency | None:
    """Find the agency a sender belongs to: the configuration first, then a one-off's people."""
    configured = config.settings.agency_for_sender(email)
    if configured is not None:
        return configured
    address = email.strip().lower()
    for stored in one_off_agencies(session, config):
        if address in {stored.contact_email.lower(), (stored.escalation_email or "").lower()}:
            return as_agency(stored)
    return None


def agency_names(session: Session, config: Config) -> dict[str, str]:
    """Return every agency's name by its key, configured and one-off."""
    names = {stored.key: stored.name for stored in one_off_agencies(session, config)}
    names.update({agency.key: agency.name for agency in config.settings.agencies})
    return names


def one_off_agencies(session: Session, config: Config) -> list[OneOffAgency]:
    """Return the partnership's one-off agencies, oldest first."""
    return list(session.exec(select(OneOffAgency).where(
        OneOffAgency.partnership == config.settings.partnership.key,
    ).order_by(col(OneOffAgency.id))))


def add_one_off_agency(
    session: Session, config: Config, name: str, contact_email: str,
    escalation_email: str | None, now: datetime, actor: str,
) -> Agency:
    """Store an agency that is not in the configuration, under a key made from its name."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("enter the agency's name")
    if len(name) > 300:
        raise ValueError("the agency's name must be 300 characters or fewer")
    for label, address in (("contact", contact_email), ("escalation", escalation_email)):
        if address is not None and not re.match(EMAIL_PATTERN, address):
            raise ValueError(f"enter the {label} email address like name@agency.example")
    taken = set(agency_names(session, config))
    stem = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:50] or "agency"
    stem = stem if stem[0].isalpha() else f"agency_{stem}"
    key, number = stem, 2
    while key in taken:
        key, number = f"{stem}_{number}", number + 1
    stored = OneOffAgency(partnership=config.settings.partnership.key, key=key, name=name,
                          contact_email=contact_email.strip(),
                          escalation_email=escalation_email.strip() if escalation_email
                          else None, added_at=now, added_by=actor)
    session.add(stored)
    session.flush()
    audit.record(session, stored.partnership, actor, "one_off_agency_added", now, None,
                 agency=key)
    return as_agency(stored)


def as_agency(stored: OneOffAgency) -> Agency:
    """Show a stored one-off agency as the configuration's Agency, so the rest treats it alike."""
    contact = Person(name=f"{stored.name} safeguarding lead", email=stored.contact_email)
    escalation = (Person(name=f"{stored.name} senior officer", email=stored.escalation_email)
                  if stored.escalation_email else None)
    return Agency(key=stored.key, name=stored.name, contacts=[contact], escalation=escalation)
