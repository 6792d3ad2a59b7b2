"""The chat ports (the channel out, interactions in), the ballot view, sending chat rows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from bot.store.models import Ballot, OutboxMessage

# The operations a queued chat row may ask for.
CHAT_OPERATIONS = ("post_ballot", "update_ballot", "ephemeral", "direct", "notice")


class ChatError(Exception):
    """A chat call failed; the outbox retries it with back-off."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientChatError(ChatError):
    """A chat call that may work later (rate limited, server busy, message not posted yet)."""


@dataclass(frozen=True)
class BallotOption:
    """One choice on a ballot and whether choosing it needs a rationale."""

    value: str
    label: str
    needs_rationale: bool = True


@dataclass(frozen=True)
class BallotView:
    """What a ballot message shows, in any chat: case reference, dates and partner names only."""

    ballot_id: int
    kind: str
    case_reference: str
    title: str
    question: str
    options: tuple[BallotOption, ...]
    progress: str
    open: bool
    outcome: str = ""
    report_sha256: str = ""

    def as_json(self) -> dict[str, Any]:
        """Return the view as a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BallotView:
        """Rebuild a view from its dictionary."""
        options = tuple(BallotOption(**option) for option in data["options"])
        return cls(**{**data, "options": options})


@dataclass
class ChatCall:
    """What a chat adapter was asked to do, for the console and for tests."""

    operation: str
    target: str
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ChatChannel(Protocol):
    """A chat backend: Slack, or the console for the embedded default."""

    name: str

    def post_ballot(self, view: BallotView, key: str) -> str:
        """Post a ballot message to the partners' channel and return its message reference."""

    def update_ballot(self, reference: str, view: BallotView) -> None:
        """Replace the ballot message at reference with the view."""

    def find_posted(self, key: str) -> str | None:
        """Return the reference of a ballot message already posted under key, if any."""

    def post_ephemeral(self, user_id: str, text: str) -> None:
        """Show text to one user in the partners' channel, and to no one else."""

    def send_direct(self, user_id: str, text: str) -> None:
        """Send text to one user as a direct message."""

    def post_notice(self, text: str) -> None:
        """Post a plain notice to the partners' channel."""

    def check(self) -> list[str]:
        """Check the connection and configuration; one line per thing found, raise on failure."""


@dataclass(frozen=True)
class ChatUser:
    """Who acted in chat: their user id, their workspace, and whether it is the partnership's."""

    user_id: str
    workspace: str | None
    in_workspace: bool


@dataclass(frozen=True)
class RationalePrompt:
    """Ask a member for the rationale of the choice they made on a ballot."""

    ballot_id: int
    case_reference: str
    choice: str
    label: str
    needs_rationale: bool


@dataclass(frozen=True)
class ChatReply:
    """How to answer an interaction: an error on the form, a prompt, and whether to send now."""

    error: str = ""
    prompt: RationalePrompt | None = None
    # Something was queued for chat or mail, so the outbox is worth running at once.
    changed: bool = False


class ChatInteractions(Protocol):
    """What people do in chat, as a chat adapter hands it to the bot (each its own transaction)."""

    def seen_before(self, receipt: str, now: datetime) -> bool:
        """Remember a delivery by its key; say whether it had already been received."""

    def vote_clicked(self, user: ChatUser, ballot_id: int | None, choice: str, delivery: str,
                     now: datetime) -> ChatReply:
        """Take a user's choice of an option on a ballot; the reply may prompt for the rationale."""

    def rationale_given(self, user: ChatUser, ballot_id: int | None, choice: str,
                        rationale: str, delivery: str, now: datetime) -> ChatReply:
        """Cast a user's vote with the rationale they gave; the reply may be an error."""

    def slash_command(self, user: ChatUser, text: str, now: datetime) -> str:
        """Run a typed command (/rapidreview ...) and return the text to answer with."""

    def listening(self, mode: str, now: datetime) -> None:
        """Record that the bot listens for chat (socket or http)."""


def deliver(chat: ChatChannel, session: Session, row: OutboxMessage, uncertain: bool) -> str:
    """Send one claimed chat row through the channel in the row's transaction; return a note."""
    payload: dict[str, Any] = json.loads(row.payload)
    operation = payload["operation"]
    if operation == "post_ballot":
        view = BallotView.from_json(payload["view"])
        # A post that may have gone before a crash is looked for before it is made again.
        reference = chat.find_posted(row.idempotency_key) if uncertain else None
        note = "found already posted" if reference else ""
        reference = reference or chat.post_ballot(view, row.idempotency_key)
        _remember_message(session, view.ballot_id, reference, payload["revision"])
        return note
    if operation == "update_ballot":
        view = BallotView.from_json(payload["view"])
        ballot = session.get_one(Ballot, view.ballot_id)
        if ballot.chat_ts is None:
            raise TransientChatError("the ballot message is not posted yet", retry_after=30)
        # Updates may be retried out of order: an older view never replaces a newer one.
        if payload["revision"] <= ballot.chat_revision:
            return "superseded by a newer view"
        chat.update_ballot(ballot.chat_ts, view)
        _remember_message(session, view.ballot_id, ballot.chat_ts, payload["revision"])
        return ""
    if operation == "ephemeral":
        chat.post_ephemeral(payload["user_id"], payload["text"])
    elif operation == "direct":
        chat.send_direct(payload["user_id"], payload["text"])
    elif operation == "notice":
        chat.post_notice(payload["text"])
    else:
        raise ChatError(f"unknown chat operation {operation!r}")
    return ""


def _remember_message(session: Session, ballot_id: int, reference: str, revision: int) -> None:
    ballot = session.get_one(Ballot, ballot_id)
    ballot.chat_ts = reference
    ballot.chat_revision = max(ballot.chat_revision, revision)
    session.add(ballot)


def ballot_text(view: BallotView) -> str:
    """Render a ballot as plain text (the console, and Slack's notification fallback)."""
    lines = [f"{view.title}: {view.question}", view.progress]
    if view.open:
        lines.append("Choices: " + "; ".join(option.label for option in view.options))
    elif view.outcome:
        lines.append(f"Outcome: {view.outcome}")
    return "\n".join(lines)
