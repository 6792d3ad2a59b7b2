"""The business manager's daily digest and Monday's weekly summary, planned one run ahead.

Each digest is a PlannedAction keyed by its working day ("digest:daily:2027-01-04") and due at
the configured time that day; when it runs it plans the next working day's. The email's outbox
key is the key of the day it reports on, so a day's digest is queued at most once however many
steps or processes run. A digest the bot missed while it was down is caught up once: the
overdue row sends the digest of the latest missed working day, with the state as it is now,
and the days before it are skipped, because each would only repeat the same current state.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from sqlmodel import select

from bot.config import Config
from bot.digest.daily import build_daily_digest
from bot.digest.weekly import build_weekly_summary
from bot.kernel.actions import ActionArguments, ActionContext, action, periodic, plan_action
from bot.mail.notify import notify
from bot.process.working_days import as_aware
from bot.store.models import PlannedAction
from bot.store.statuses import PlannedActionStatus

log = logging.getLogger(__name__)

DIGEST_ACTION = "digest"


class DigestDay(ActionArguments):
    """The working day a planned digest is for."""

    day: date


# How far back the latest missed digest day is looked for: longer than any closure.
_LOOKBACK_DAYS = 60


def slot_at(config: Config, day: date) -> datetime:
    """Return the instant (UTC) the digest of a working day is due."""
    return config.calendar.at(day, config.settings.digest.daily_at)


def next_slot(config: Config, after: datetime) -> date:
    """Return the first working day whose digest time is strictly after the instant."""
    calendar = config.calendar
    day = calendar.local_date(after)
    if not calendar.is_working_day(day) or slot_at(config, day) <= after:
        day = calendar.add_working_days(day, 1)
    return day


def latest_slot(config: Config, now: datetime) -> date | None:
    """Return the latest working day whose digest time is at or before now, if any is near."""
    calendar = config.calendar
    day = calendar.local_date(now)
    for _ in range(_LOOKBACK_DAYS):
        if calendar.is_working_day(day) and slot_at(config, day) <= now:
            return day
        day -= timedelta(days=1)
    return None


def daily_key(day: date) -> str:
    """Return the planned action and outbox key of a working day's digest."""
    return f"digest:daily:{day.isoformat()}"


def weekly_key(monday: date) -> str:
    """Return the outbox key of the weekly summary sent in the week starting monday."""
    year, week, _ = monday.isocalendar()
    return f"digest:weekly:{year}-W{week:02d}"


def first_working_day_of_week(config: Config, day: date) -> date | None:
    """Return the first working day of the Monday-to-Sunday week holding day, if it has one."""
    monday = day - timedelta(days=day.weekday())
    for offset in range(7):
        if config.calendar.is_working_day(monday + timedelta(days=offset)):
            return monday + timedelta(days=offset)
    return None


@periodic("digest")
def plan_digest(context: ActionContext) -> None:
    """Plan the next working day's digest when none is pending (the first run, say)."""
    session, config = context.session, context.config
    pending = session.exec(select(PlannedAction).where(
        PlannedAction.action == DIGEST_ACTION,
        PlannedAction.status == PlannedActionStatus.PENDING,
        PlannedAction.partnership == config.settings.partnership.key,
    )).first()
    if pending is None:
        _plan(context, next_slot(config, as_aware(context.now)))
        return
    day = DigestDay.model_validate(pending.arguments).day
    # A day closed since it was planned (a new closure date) gives way to the next working day.
    if not config.calendar.is_working_day(day):
        pending.status, pending.done_at = PlannedActionStatus.CANCELLED, context.now
        session.add(pending)
        _plan(context, next_slot(config, as_aware(context.now)))
        return
    # A changed daily_at moves the pending digest to the new time on the same day.
    wanted = slot_at(config, day)
    if pending.due_at != wanted:
        pending.due_at = wanted
        session.add(pending)


@action(DIGEST_ACTION, DigestDay)
def send_digest(context: ActionContext, planned: PlannedAction, planned_day: DigestDay) -> None:
    """Queue the latest due day's digest (and the weekly summary on a week's first day)."""
    session, config, now = context.session, context.config, as_aware(context.now)
    day = latest_slot(config, now) or planned_day.day
    previous = latest_slot(config, slot_at(config, day) - timedelta(microseconds=1))
    since = slot_at(config, previous) if previous else slot_at(config, day) - timedelta(days=1)
    digest = build_daily_digest(session, config, now, since)
    _queue(context, "digest", daily_key(day), digest=digest)
    log.info("daily digest queued for %s (%d open cases)", day.isoformat(), len(digest.cases))
    first = first_working_day_of_week(config, day)
    # The weekly summary goes with the week's first digest, or with the one that catches it up.
    if (config.settings.digest.weekly_on_monday and first is not None
            and planned.due_at <= slot_at(config, first) <= now):
        monday = day - timedelta(days=day.weekday())
        summary = build_weekly_summary(session, config, now, monday - timedelta(days=7))
        _queue(context, "weekly_summary", weekly_key(monday), summary=summary)
        log.info("weekly summary queued for the week of %s (%d closed cases)",
                 monday.isoformat(), len(summary.closed))
    _plan(context, next_slot(config, now))


def _plan(context: ActionContext, day: date) -> None:
    config = context.config
    plan_action(context.session, partnership=config.settings.partnership.key, case_id=None,
                key=daily_key(day), action_name=DIGEST_ACTION, arguments=DigestDay(day=day),
                due_at=slot_at(config, day))
    context.session.flush()


def _queue(context: ActionContext, purpose: str, key: str, **values: object) -> None:
    settings = context.config.settings
    manager = settings.business_manager
    notify(context.session, context.config, purpose, to=[manager.email], key=key,
           now=context.now, values={"recipient_name": manager.name, **values})
