"""Personal vote links: one per member, ballot and report version, signed, until the close."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.ballots.members import Member
from bot.config import Config
from bot.kernel.signing import sign, verify
from bot.store.models import Ballot

PURPOSE = "vote"


def vote_link(session: Session, config: Config, ballot: Ballot, member: Member) -> str | None:
    """Return the member's own link to vote on the ballot, or None without a public address."""
    base = config.settings.web.base_url
    if not base:
        return None
    token = sign(session, PURPOSE, {"m": member.email.lower(), "b": ballot.id,
                                    "h": ballot.report_sha256 or ""}, ballot.closes_at)
    return f"{base}/vote/{token}"


def read_vote_token(session: Session, token: str, now: Any) -> tuple[str, int, str]:
    """Return the member's address, the ballot id and report hash a vote link was made for."""
    claims = verify(session, PURPOSE, token, now)
    return str(claims["m"]), int(claims["b"]), str(claims["h"])


def link_receipt(ballot_id: int, address: str, report_sha256: str) -> str:
    """Return the delivery key of a vote by link, so that each link counts once."""
    return f"web-vote:{ballot_id}:{address.lower()}:{report_sha256[:16]}"
