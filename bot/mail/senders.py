"""Sender verification: a configured contact, authenticated by the partnership's own boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from bot.config import Config
from bot.mail.auth_results import AuthResult
from bot.mail.boundary import boundary_results
from bot.mail.mime import address_domain, sender_address


@dataclass(frozen=True)
class SenderCheck:
    """Whether the bot may act on a message's sender, who that is, and why (not)."""

    ok: bool
    address: str
    reason: str


def verified_sender(
    config: Config, message: Message, also_known: Callable[[str], str | None] | None = None
) -> SenderCheck:
    """Say whether a message comes, authenticated, from someone the configuration names.

    also_known describes senders the configuration does not name (a one-off agency's people).
    """
    address = sender_address(message)
    if address is None:
        return SenderCheck(False, "", "the From header does not hold exactly one address")
    if not address.isascii():
        return SenderCheck(False, address, f"{address} is not a plain ASCII address (a "
                                           "look-alike of a configured domain?)")
    who = config.settings.known_sender(address) or (also_known(address) if also_known else None)
    if who is None:
        return SenderCheck(False, address,
                           f"{address} is not a configured contact or agency domain")
    mailbox = config.settings.mailbox
    found = boundary_results(mailbox, message)
    if found.internal and aligned(address_domain(address), mailbox.address):
        return SenderCheck(True, address, f"{who}, signed in to the council's Exchange Online")
    if not found.results:
        note = f"; {found.ignored} Authentication-Results header(s) from outside ignored" if (
            found.ignored) else ""
        if mailbox.unauthenticated == "accept":
            return SenderCheck(True, address, f"{who}, accepted without authentication "
                                              f"results (mailbox.unauthenticated){note}")
        return SenderCheck(False, address, f"{who}, but the mail boundary gave no "
                                           f"authentication results{note}")
    return _judge(address, who, found.results)


def aligned(domain: str, other: str) -> bool:
    """Say whether two domains align (relaxed: equal, or one a subdomain of the other)."""
    domain, other = domain.lower().strip("."), other.lower().strip(".")
    if "@" in other:
        other = address_domain(other)
    return bool(domain and other) and (
        domain == other or domain.endswith("." + other) or other.endswith("." + domain)
    )


def _judge(address: str, who: str, results: tuple[AuthResult, ...]) -> SenderCheck:
    domain = address_domain(address)
    for result in results:
        if result.method == "dmarc" and result.result == "pass":
            header_from = result.properties.get("header.from", domain)
            if aligned(domain, header_from):
                return SenderCheck(True, address, f"{who}, dmarc=pass")
    spf = any(r.method == "spf" and r.result == "pass"
              and aligned(domain, r.properties.get("smtp.mailfrom", "")) for r in results)
    dkim = any(r.method == "dkim" and r.result == "pass"
               and aligned(domain, r.properties.get("header.d", "")
                           or r.properties.get("header.i", "")) for r in results)
    if spf and dkim:
        return SenderCheck(True, address, f"{who}, spf=pass and dkim=pass, aligned")
    summary = ", ".join(f"{r.method}={r.result}" for r in results) or "no results"
    return SenderCheck(False, address, f"{who}, but the mail boundary did not authenticate "
                                       f"the sender ({summary})")
