"""The case papers' jobs: read each return as it comes, build the papers when collation is due."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.kernel import audit
from bot.kernel.actions import ActionContext, action
from bot.kernel.events import Event, subscribe
from bot.mail.notify import notify
from bot.papers.collation import (
    CollationDue,
    ReturnsArrived,
    collate,
    collation_done,
    plan_collation,
    take_return,
)
from bot.store.models import Case, PlannedAction
from bot.store.statuses import CaseStatus

log = logging.getLogger(__name__)


@subscribe("case_decided")
def plan_papers_when_a_rapid_review_is_decided(event: Event) -> None:
    """Plan the combined chronology and draft for the collation step of a Rapid Review."""
    if event.payload.get("decision") == "rapid_review":
        plan_collation(event.session, event.config, event.case)


@subscribe("clock_restarted")
def move_papers_with_the_clock(event: Event) -> None:
    """Move the collation when Day 0 moves (Doncaster's notification)."""
    plan_collation(event.session, event.config, event.case)


@action("read_return", ReturnsArrived)
def read_returns(context: ActionContext, planned: PlannedAction, step: ReturnsArrived) -> None:
    """Read an agency's return; after collation, a late one rebuilds the papers."""
    case = context.session.get_one(Case, planned.case_id)

    def work() -> None:
        take_return(context.session, context.config, case, step, context.now)
        # The returns coming in may move the collation step (it can count from them).
        plan_collation(context.session, context.config, case)
        if collation_done(context.session, case) and case.status != CaseStatus.CLOSED:
            agency = context.config.settings.agency(step.agency).name
            collate(context.session, context.config, case, context.now,
                    build=f"late:{step.documents[0]}", late=agency)

    _safely(context, case, "reading a return", work)


@action("collate_papers", CollationDue)
def collate_papers(context: ActionContext, planned: PlannedAction, step: CollationDue) -> None:
    """At the collation step: build the chronology and draft and send them."""
    case = context.session.get_one(Case, planned.case_id)
    if case.status == CaseStatus.CLOSED or collation_done(context.session, case):
        return
    _safely(context, case, "building the case papers",
            lambda: collate(context.session, context.config, case, context.now,
                            build="collation"))


def _safely(context: ActionContext, case: Case, what: str, work: Callable[[], object]) -> None:
    # A failure is undone and reported; it never stops the step's other actions.
    try:
        with context.session.begin_nested():
            work()
    except Exception as error:  # noqa: BLE001 - the step must go on; the kind is reported.
        log.error("%s on %s failed: %s", what, case.reference, type(error).__name__)
        _tell_failure(context, case, what, type(error).__name__)


def _tell_failure(context: ActionContext, case: Case, what: str, kind: str) -> None:
    config = context.config
    manager = config.settings.business_manager
    audit.record(context.session, case.partnership, "bot", "papers_failed", context.now,
                 case.id, what=what, error=kind)
    notify(context.session, config, "papers_failed", to=[manager.email],
           key=f"{case.reference}:papers:failed:{context.now:%Y%m%dT%H%M}:{what}",
           now=context.now, case_id=case.id, values=dict(
               recipient_name=manager.name, case_reference=case.reference, what=what,
               error=kind))
