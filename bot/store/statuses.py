"""The statuses and kinds the tables store, one StrEnum per family, valued as stored."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    """Where a Rapid Review has got to; bot.cases.states says which may follow which."""

    RECEIVED = "received"
    AWAITING_DECISION = "awaiting_decision"
    ESCALATED = "escalated"
    RAPID_REVIEW = "rapid_review"
    REQUESTS_SENT = "requests_sent"
    RETURNS_COLLECTED = "returns_collected"
    MEETING_HELD = "meeting_held"
    DRAFT_REPORT = "draft_report"
    SIGNED_OFF = "signed_off"
    SUBMITTED = "submitted"
    # The report has gone and been confirmed in Sent; the National Panel's response is awaited.
    AWAITING_PANEL_RESPONSE = "awaiting_panel_response"
    # A local child safeguarding practice review was commissioned and runs its own timeline.
    LOCAL_REVIEW = "local_review"
    NO_FURTHER_ACTION = "no_further_action"
    LEARNING_REVIEW = "learning_review"
    CLOSED = "closed"


class MilestoneStatus(StrEnum):
    """Where a dated step of a case stands: to come, done, late, or not part of this case."""

    PENDING = "pending"
    DONE = "done"
    OVERDUE = "overdue"
    NOT_APPLICABLE = "not_applicable"


class PlannedActionStatus(StrEnum):
    """Where a planned action has got to: waiting for its time, run, or no longer wanted."""

    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"


class AgencyRequestStatus(StrEnum):
    """Where one agency's information request stands: still open, or closed and how."""

    OPEN = "open"
    RETURNED = "returned"
    NO_INVOLVEMENT = "no_involvement"
    WITHDRAWN = "withdrawn"
    # Still outstanding when the report went to the National Panel: no longer chased.
    NOT_RETURNED = "not_returned"


class AgencyRequestKind(StrEnum):
    """What an agency is asked for: its information for the review, or a later follow-up."""

    INFORMATION = "information"
    # Oldham's lesson log, asked of the agencies that returned once the report has gone.
    LESSON_LOG = "lesson_log"


class BallotKind(StrEnum):
    """What the partners are asked: the decision on a referral, or the sign-off of a report."""

    DECISION = "decision"
    SIGNOFF = "signoff"


class BallotStatus(StrEnum):
    """Whether a ballot still takes votes; its outcome says how it closed."""

    OPEN = "open"
    CLOSED = "closed"


class InboundStatus(StrEnum):
    """Where a message from the mailbox stands: not yet handled, dealt with, or set aside."""

    NEW = "new"
    PROCESSED = "processed"
    QUARANTINED = "quarantined"
    # Set aside for good by the business manager, with the reason; the bytes are kept.
    DISCARDED = "discarded"


class VouchedAs(StrEnum):
    """What the business manager vouches a released message is: the handler that takes it."""

    REFERRAL = "referral"
    RETURN = "return"
    VOTE = "vote"
    REPORT = "report"


class OutboxStatus(StrEnum):
    """Where a queued message stands on its way out."""

    PENDING = "pending"
    # Claimed by a process that is sending it (or was, when it stopped).
    SENDING = "sending"
    SENT = "sent"
    # Given up after the last attempt failed.
    DEAD = "dead"
    # Not sent because its cut-off had passed; a person must say whether it goes.
    HELD = "held"
    # Replaced by a newer message (a submission of a newer report version) before it went.
    SUPERSEDED = "superseded"
    # Given up by the business manager after it could not be delivered: no longer flagged.
    ABANDONED = "abandoned"


class OutboxChannel(StrEnum):
    """How a queued message goes: by email or to the chat channel."""

    MAIL = "mail"
    CHAT = "chat"
