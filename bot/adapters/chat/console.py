"""The console chat backend: prints ballots and notices; votes come in with `rrbot vote`."""

from __future__ import annotations

import hashlib
import sys
from typing import TextIO

from bot.kernel.chat import BallotView, ChatCall, ballot_text


class ConsoleChat:
    """A ChatChannel that prints to a stream (standard output by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.calls: list[ChatCall] = []
        self._posted: dict[str, str] = {}

    def post_ballot(self, view: BallotView, key: str) -> str:
        """Print the ballot; its reference is derived from the outbox key."""
        reference = "console-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        self._posted[key] = reference
        self._print("post_ballot", "channel", ballot_text(view) + _how_to_vote(view))
        return reference

    def update_ballot(self, reference: str, view: BallotView) -> None:
        """Print the ballot's new state."""
        self._print("update_ballot", reference, ballot_text(view))

    def find_posted(self, key: str) -> str | None:
        """Return the reference of a ballot printed under key in this process."""
        return self._posted.get(key)

    def post_ephemeral(self, user_id: str, text: str) -> None:
        """Print a message meant for one user."""
        self._print("ephemeral", user_id, text)

    def send_direct(self, user_id: str, text: str) -> None:
        """Print a direct message."""
        self._print("direct", user_id, text)

    def post_notice(self, text: str) -> None:
        """Print a channel notice."""
        self._print("notice", "channel", text)

    def check(self) -> list[str]:
        """Nothing to connect to."""
        return ["console chat: ballots and notices are printed; votes use `rrbot vote`"]

    def _print(self, operation: str, target: str, text: str) -> None:
        self.calls.append(ChatCall(operation, target, text))
        stream = self.stream or sys.stdout
        stream.write(f"[chat {operation} -> {target}]\n{text}\n")
        stream.flush()


def _how_to_vote(view: BallotView) -> str:
    if not view.open:
        return ""
    kind = view.kind
    return (f"\nVote with: rrbot vote {view.case_reference} --config FILE --ballot {kind}"
            " --partner KEY --member NAME --choice CHOICE --rationale TEXT --evidence TEXT")
