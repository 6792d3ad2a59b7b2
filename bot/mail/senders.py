"""Sender verification: a configured contact, authenticated by the partnership's own boundary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from bot.config import Config
from bot.mail.mime import address_domain, sender_address

RECEIVED_BY = re.compile(r"\bby\s+([A-Za-z0-9.-]+)", re.IGNORECASE)
RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z]+)", re.IGNORECASE)
PROPERTY = re.compile(r"\b([a-z]+\.[a-z0-9_-]+)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


@dataclass(frozen=True)
class SenderCheck:
    """Whether the bot may act on a message's sender, who that is, and why (not)."""

    ok: bool
    address: str
    reason: str


@dataclass(frozen=True)
class AuthResult:
    """One method's result in an Authentication-Results header (dmarc=pass header.from=...)."""

    method: str
    result: str
    properties: dict[str, str]


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
    results, forged = trusted_results(config, message)
    if not results:
        note = f"; {forged} Authentication-Results header(s) from outside ignored" if (
            forged) else ""
        if config.settings.mailbox.unauthenticated == "accept":
            return SenderCheck(True, address, f"{who}, accepted without authentication "
                                              f"results (mailbox.unauthenticated){note}")
        return SenderCheck(False, address, f"{who}, but the mail boundary gave no "
                                           f"authentication results{note}")
    return _judge(address, who, results)


def trusted_results(config: Config, message: Message) -> tuple[list[list[AuthResult]], int]:
    """Return the results our boundary added, and how many claiming its id were ignored.

    Following RFC 8601 section 5, only headers above the first Received header written by a
    host outside the partnership count; the same authserv-id further down was written before
    the message reached us, so it is forged.
    """
    trusted_id = config.settings.mailbox.trusted_authserv_id
    if not trusted_id:
        return [], 0
    ours = {trusted_id.lower()}
    own_domain = address_domain(config.settings.mailbox.address)
    inside, results, forged = True, [], 0
    for name, value in message.raw_items():
        lowered = name.lower()
        if lowered == "received" and inside:
            found = RECEIVED_BY.search(str(value))
            host = found.group(1).lower().rstrip(".") if found else ""
            inside = host in ours or host == own_domain or host.endswith("." + own_domain)
        elif lowered == "authentication-results":
            text = " ".join(str(value).split())
            authserv_id = text.split(";", 1)[0].split()[0].lower() if text else ""
            if authserv_id != trusted_id.lower():
                continue
            if inside:
                results.append(parse_results(text))
            else:
                forged += 1
    return results, forged


def parse_results(value: str) -> list[AuthResult]:
    """Read the method results of one Authentication-Results header value."""
    found = []
    for segment in value.split(";")[1:]:
        match = RESULT.match(segment)
        if match is None:
            continue
        properties = {key.lower(): val.lower() for key, val in PROPERTY.findall(segment)}
        found.append(AuthResult(match.group(1).lower(), match.group(2).lower(), properties))
    return found


def aligned(domain: str, other: str) -> bool:
    """Say whether two domains align (relaxed: equal, or one a subdomain of the other)."""
    domain, other = domain.lower().strip("."), other.lower().strip(".")
    if "@" in other:
        other = address_domain(other)
    return bool(domain and other) and (
        domain == other or domain.endswith("." + other) or other.endswith("." + domain)
    )


def _judge(address: str, who: str, headers: list[list[AuthResult]]) -> SenderCheck:
    domain = address_domain(address)
    # The topmost header is the boundary's verdict on the message as it arrived.
    results = headers[0]
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
