"""The meeting's invitations follow the case: an update when it moves, a cancel when it ends."""

from __future__ import annotations

from bot.agencies.meeting import MEETING_MILESTONE, cancel_meetings, update_meetings
from bot.kernel.events import Event, subscribe


@subscribe("milestones_moved")
def update_the_invitations_when_the_meeting_moves(event: Event) -> None:
    """Send each invited agency an update (SEQUENCE + 1) when the meeting's date changes."""
    if MEETING_MILESTONE in event.payload.get("moved", []):
        update_meetings(event.session, event.config, event.case, event.now)


@subscribe("case_closed")
def cancel_the_invitations_when_the_case_ends(event: Event) -> None:
    """Cancel every agency's meeting still to come when the case ends before it."""
    cancel_meetings(event.session, event.config, event.case, event.now)
