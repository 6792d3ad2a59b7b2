"""What people do in chat, each in its own transaction, through the commands (the chat port)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.commands.ballots import BeginVote, CastVote, VoteSource, begin_vote, cast_vote
from bot.commands.base import CommandError, Context, NotAllowed
from bot.commands.people import chat_actor
from bot.commands.slash import run_command
from bot.config import Config
from bot.kernel import audit
from bot.kernel.chat import ChatReply, ChatUser, RationalePrompt
from bot.kernel.outbox import enqueue_chat
from bot.kernel.receipts import receipt_seen, remember_receipt
from bot.store.db import transaction

CHOICE_TOO_LATE = "This ballot has closed; your choice was not counted."
VOTE_TOO_LATE = "This ballot has closed; your vote was not counted."
OTHER_WORKSPACE = "Sorry, this command only works in the partnership's own workspace."


class ChatCommands:
    """The bot's side of ChatInteractions: who the chat user is, then the command they asked for."""

    def __init__(self, config: Config, database: DatabaseEngine) -> None:
        self.config = config
        self.database = database

    def seen_before(self, receipt: str, now: datetime) -> bool:
        """Remember a delivery by its key; say whether it had already been received."""
        try:
            with transaction(self.database) as session:
                if receipt_seen(session, receipt):
                    return True
                remember_receipt(session, self.config.settings.partnership.key, receipt, now,
                                 None)
        except IntegrityError:
            # The same delivery arrived twice at once; the other copy is the one acted on.
            return True
        return False

    def vote_clicked(self, user: ChatUser, ballot_id: int | None, choice: str, delivery: str,
                     now: datetime) -> ChatReply:
        """Check the user may vote on the ballot; prompt for the rationale, or say it closed."""
        with transaction(self.database) as session:
            try:
                start = begin_vote(self._context(session, user, now),
                                   BeginVote(ballot_id, choice, delivery, user.workspace))
            except NotAllowed:
                return ChatReply(changed=True)
            if start.status == "closed":
                self._tell(session, user, delivery, CHOICE_TOO_LATE, now)
        if start.status != "ask":
            return ChatReply(changed=True)
        return ChatReply(changed=True, prompt=RationalePrompt(
            start.ballot_id, start.case_reference, start.choice, start.label,
            start.needs_rationale))

    def rationale_given(self, user: ChatUser, ballot_id: int | None, choice: str,
                        rationale: str, delivery: str, now: datetime) -> ChatReply:
        """Cast the user's vote; a refusal of the vote itself is shown on the form."""
        request = CastVote(ballot_id or 0, choice, rationale, VoteSource.SLACK, delivery,
                           workspace=user.workspace)
        try:
            with transaction(self.database) as session:
                try:
                    result = cast_vote(self._context(session, user, now), request)
                except NotAllowed:
                    # The refusal is audited and told to the user; the form just closes.
                    return ChatReply()
        except CommandError as exc:
            return ChatReply(error=str(exc))
        except IntegrityError:
            # The same submission arrived twice at once; the other copy counted it.
            return ChatReply()
        if result.status == "closed":
            return ChatReply(error=VOTE_TOO_LATE)
        return ChatReply(changed=True)

    def slash_command(self, user: ChatUser, text: str, now: datetime) -> str:
        """Run a /rapidreview command and return the reply."""
        if not user.in_workspace:
            return OTHER_WORKSPACE
        with transaction(self.database) as session:
            return run_command(self._context(session, user, now), text)

    def listening(self, mode: str, now: datetime) -> None:
        """Record that the bot listens for chat."""
        with transaction(self.database) as session:
            audit.record(session, self.config.settings.partnership.key, "bot", "chat_listening",
                         now, mode=mode)

    def _context(self, session: Session, user: ChatUser, now: datetime) -> Context:
        return Context(session, self.config, chat_actor(self.config, user.user_id,
                                                        user.in_workspace), now)

    def _tell(self, session: Session, user: ChatUser, delivery: str, text: str,
              now: datetime) -> None:
        enqueue_chat(session, partnership=self.config.settings.partnership.key,
                     key=f"notice:{delivery}", purpose="ballot_closed_notice",
                     payload={"operation": "ephemeral", "user_id": user.user_id, "text": text},
                     now=now, recipient=user.user_id)
