"""The partnership's mail boundary: which Authentication-Results it wrote, and which it did not.

RFC 8601 section 5: only results added by the boundary of the receiving organisation count;
ones written further down the message were there before it arrived, and anyone can write them.
Three boundary shapes ([mailbox] boundary):

- "authserv-id": the boundary (a gateway such as Mimecast or Proofpoint, OpenDKIM and OpenDMARC,
  Google Workspace) names itself as the authserv-id (``trusted_authserv_id``). Going down the
  message from the top, results count until the first Received header written by a host that
  is not the boundary, the mailbox's own domain or one of ``internal_relays`` (a hop that
  names no sending host is the system's own hand-on).
- "exchange-online": Exchange Online Protection writes results without an authserv-id, above the
  Received header of its inbound frontend (``by *.mail.protection.outlook.com``), under a run of
  Microsoft's own hops (``*.prod.outlook.com``, ``*.outlook.office365.com``). Only the topmost
  such header above that entry counts; anything below the entry, any header with an
  authserv-id, and ``Authentication-Results-Original`` are someone else's. Mail sent inside the
  tenant has no results; Exchange marks it ``X-MS-Exchange-Organization-AuthAs: Internal``, a
  header Exchange's header firewall removes from mail that comes from outside.
- "none": no boundary adds results, so no sender can be authenticated.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from bot.mail.auth_results import AuthResult, parse_auth_results
from bot.settings import MailboxSettings

# Host names of Microsoft 365's own mail servers (worldwide, US government and 21Vianet).
MICROSOFT_HOSTS = (".outlook.com", ".office365.com", ".office365.us", ".outlook.cn",
                   ".exchangelabs.com")
# Exchange Online Protection's inbound frontends: where mail from outside enters the tenant.
MICROSOFT_ENTRY = (".mail.protection.outlook.com", ".mail.protection.office365.us",
                   ".mail.protection.partner.outlook.cn")
AUTH_AS = "x-ms-exchange-organization-authas"


@dataclass(frozen=True)
class BoundaryResults:
    """What the boundary said about a message's sender, and what else was ignored."""

    # Each method's results as the boundary wrote them (from the topmost header naming it).
    results: tuple[AuthResult, ...]
    # Authentication-Results headers that did not come from the boundary.
    ignored: int
    # Exchange Online says the sender signed in to the tenant (mail sent inside it).
    internal: bool = False


def received_hosts(value: str) -> tuple[str, str]:
    """Return the (from, by) host names of a Received header, ignoring its comments."""
    words: list[str] = []
    depth, current = 0, []
    for character in value:
        if character == "(":
            depth += 1
        elif character == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and not character.isspace() and character != ";":
            current.append(character)
            continue
        if current:
            words.append("".join(current))
            current = []
        if character == ";" and depth == 0:
            break
    if current:
        words.append("".join(current))
    found = {"from": "", "by": ""}
    for index, word in enumerate(words[:-1]):
        key = word.lower()
        if key in found and not found[key]:
            found[key] = words[index + 1].lower().strip("[]").rstrip(".")
    return found["from"], found["by"]


def host_matches(host: str, patterns: list[str]) -> bool:
    """Say whether a host is one of the names given ("*.example" matches any subdomain)."""
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def boundary_results(settings: MailboxSettings, message: Message) -> BoundaryResults:
    """Return the results the configured boundary added to a message (cached per message)."""
    cache: dict[str, BoundaryResults] = message.__dict__.setdefault("_rrbot_boundary", {})
    key = f"{settings.boundary}:{settings.trusted_authserv_id}:{settings.internal_relays}"
    if key not in cache:
        if settings.boundary == "exchange-online":
            cache[key] = _exchange_online(settings, message)
        elif settings.boundary == "authserv-id":
            cache[key] = _authserv_id(settings, message)
        else:
            cache[key] = BoundaryResults((), _count(message))
    return cache[key]


def _count(message: Message) -> int:
    return sum(1 for name, _ in message.raw_items() if name.lower() == "authentication-results")


def _own_domain(settings: MailboxSettings) -> str:
    return settings.address.rpartition("@")[2].lower()


def _authserv_id(settings: MailboxSettings, message: Message) -> BoundaryResults:
    trusted = (settings.trusted_authserv_id or "").lower()
    if not trusted:
        return BoundaryResults((), _count(message))
    own = _own_domain(settings)
    inside, ignored = True, 0
    headers: list[tuple[AuthResult, ...]] = []
    for name, value in message.raw_items():
        lowered = name.lower()
        if lowered == "received" and inside:
            source, host = received_hosts(str(value))
            # A hop that names no sending host ("Received: by 2002:a05:... with SMTP id", as
            # Google writes) is the system handing mail on inside itself.
            inside = not source or (host == trusted or host == own or host.endswith("." + own)
                      or host_matches(host, settings.internal_relays))
        elif lowered == "authentication-results":
            header = parse_auth_results(str(value))
            if header.authserv_id == trusted and inside:
                headers.append(header.results)
            else:
                ignored += 1
    return BoundaryResults(_topmost(headers), ignored)


def _exchange_online(settings: MailboxSettings, message: Message) -> BoundaryResults:
    inside, entered, ignored = True, False, 0
    headers: list[tuple[AuthResult, ...]] = []
    auth_as: list[str] = []
    for name, value in message.raw_items():
        lowered = name.lower()
        if lowered == AUTH_AS:
            auth_as.append(" ".join(str(value).split()).lower())
        elif lowered == "received" and inside:
            host = received_hosts(str(value))[1]
            relay = host_matches(host, settings.internal_relays)
            # Below the frontend's own Received header, everything came from outside.
            entered = host.endswith(MICROSOFT_ENTRY)
            inside = not entered and (host.endswith(MICROSOFT_HOSTS) or relay)
        elif lowered == "authentication-results":
            header = parse_auth_results(str(value))
            if header.authserv_id is None and inside and not headers:
                headers.append(header.results)
            else:
                ignored += 1
    if not entered:
        # No frontend hop: the mail never came in from outside, so any results are not EOP's.
        ignored += len(headers)
        headers = []
    internal = not entered and bool(auth_as) and all(value == "internal" for value in auth_as)
    return BoundaryResults(_topmost(headers), ignored, internal)


def _topmost(headers: list[tuple[AuthResult, ...]]) -> tuple[AuthResult, ...]:
    """Merge the boundary's headers, keeping each method's topmost result.

    A boundary may write one header per method (OpenDKIM, then OpenDMARC); a result further
    down never overrides one above it, so a forged pass cannot outvote the boundary's fail.
    """
    kept: list[AuthResult] = []
    claimed: set[str] = set()
    for results in headers:
        # Every result of a method in the topmost header naming it (a message may carry
        # several DKIM signatures), none from lower headers.
        methods = {result.method for result in results} - claimed
        kept.extend(result for result in results if result.method in methods)
        claimed |= methods
    return tuple(kept)
