"""Partner ballots over time: open the decision ballot, chase partners, close at the deadline."""

from __future__ import annotations

from bot.ballots.chasing import BallotStep, remind_partners, warn_if_at_risk
from bot.ballots.lifecycle import close_at_deadline, open_decision_ballot
from bot.kernel.actions import ActionContext, action
from bot.kernel.events import Event, subscribe
from bot.store.models import PlannedAction


@subscribe("case_opened")
def open_the_decision_ballot(event: Event) -> None:
    """Put the referral to the partners as soon as the case is open."""
    open_decision_ballot(event.session, event.config, event.case, event.now)


@action("ballot_reminder", BallotStep)
def remind(context: ActionContext, planned: PlannedAction, step: BallotStep) -> None:
    """Remind the members of each partner that has not voted yet."""
    remind_partners(context.session, context.config, step.ballot_id, planned.key, context.now)


@action("ballot_at_risk", BallotStep)
def warn(context: ActionContext, planned: PlannedAction, step: BallotStep) -> None:
    """Warn the business manager when a ballot near its deadline still lacks quorum."""
    warn_if_at_risk(context.session, context.config, step.ballot_id, planned.key, context.now)


@action("ballot_deadline", BallotStep)
def close(context: ActionContext, planned: PlannedAction, step: BallotStep) -> None:
    """Close a ballot at its deadline if quorum was never reached."""
    close_at_deadline(context.session, context.config, step.ballot_id, context.now)
