"""The service's metrics for Prometheus: the engine's own, the database's and the process's.

Every series a dashboard or an alert rule reads is present from the first scrape, at zero
where there is nothing to count (an outbox with no dead letters says so with a 0).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine as DatabaseEngine
from sqlmodel import Session, col, func, select

from bot.cases.states import OPEN_STATUSES
from bot.config import Config
from bot.digest.daily import SIGNOFF_KEY
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import as_aware
from bot.service.health import HealthState
from bot.store.db import transaction
from bot.store.models import Ballot, Case, InboundMessage, Milestone, OutboxMessage
from bot.store.statuses import (
    BallotKind,
    BallotStatus,
    InboundStatus,
    MilestoneStatus,
    OutboxStatus,
)

log = logging.getLogger(__name__)

# Step durations from a quiet sweep (tens of milliseconds) to a long catch-up (minutes).
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServiceMetrics:
    """The registry /metrics renders, and what the engine thread records after each step."""

    def __init__(
        self, config: Config, database: DatabaseEngine, state: HealthState
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.step_seconds = Histogram("rrbot_step_duration_seconds",
                                      "How long each engine step took.", buckets=STEP_BUCKETS,
                                      registry=registry)
        self.steps = Counter("rrbot_steps", "Engine steps run, by result.", ["result"],
                             registry=registry)
        for result in ("ok", "failed"):
            self.steps.labels(result)
        self.sent = Counter("rrbot_sent", "Messages sent by this process.", registry=registry)
        Gauge("rrbot_last_step_timestamp_seconds",
              "When the last engine step completed (the heartbeat), as a Unix time.",
              registry=registry).set_function(lambda: _stamp(state.last_step_at))
        Gauge("rrbot_mailbox_last_successful_read_timestamp_seconds",
              "When the mailbox was last read successfully, as a Unix time.",
              registry=registry).set_function(lambda: _stamp(state.last_poll_ok_at))
        Gauge("rrbot_mailbox_up", "Whether the mailbox has been read within"
              " [service] mailbox_stale_minutes.", registry=registry).set_function(
            lambda: float(state.mailbox_check(state.clock())["ok"]))
        Gauge("rrbot_engine_up", "Whether the engine thread runs and its heartbeat is recent.",
              registry=registry).set_function(
            lambda: float(state.engine_check(state.clock())["ok"]))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        registry.register(DatabaseCollector(config, database, state.clock))

    def step_done(self, seconds: float, sent: int, ok: bool) -> None:
        """Record one engine step: its duration, its result and what it sent."""
        self.step_seconds.observe(seconds)
        self.steps.labels("ok" if ok else "failed").inc()
        self.sent.inc(sent)

    def render(self) -> bytes:
        """Return every series in the Prometheus text format."""
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """Reads the series that live in the database at each scrape."""

    def __init__(
        self, config: Config, database: DatabaseEngine, clock: Callable[[], datetime]
    ) -> None:
        self.config = config
        self.database = database
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """Yield the outbox, inbound, case, milestone and ballot series."""
        up = GaugeMetricFamily("rrbot_database_up", "Whether the last scrape read the database.")
        try:
            with transaction(self.database) as session:
                families = list(self._families(session, self.clock()))
        except Exception as exc:  # noqa: BLE001 - a scrape reports a failure, never raises.
            log.warning("metrics could not read the database: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session, now: datetime) -> Iterator[Metric]:
        outbox = Tally(dict(session.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()))
        yield _by_label("rrbot_outbox_messages", "Outbox rows by status (dead: dead letters).",
                        "status", [status.value for status in OutboxStatus], outbox)
        inbound = Tally(dict(session.exec(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all()))
        yield _by_label("rrbot_inbound_messages", "Messages taken in, by outcome.", "outcome",
                        [status.value for status in InboundStatus], inbound)
        quarantined = GaugeMetricFamily("rrbot_quarantined_messages",
                                        "Inbound mail waiting for the business manager.")
        quarantined.add_metric([], inbound[InboundStatus.QUARANTINED])
        yield quarantined
        cases = Tally(dict(session.exec(
            select(Case.status, func.count()).where(col(Case.status).in_(OPEN_STATUSES))
            .group_by(Case.status)).all()))
        yield _by_label("rrbot_open_cases", "Cases not yet closed, by status.", "status",
                        sorted(OPEN_STATUSES), cases)
        ballots = Tally(dict(session.exec(
            select(Ballot.kind, func.count()).where(Ballot.status == BallotStatus.OPEN)
            .group_by(Ballot.kind)).all()))
        yield _by_label("rrbot_ballots_awaiting_votes", "Open ballots still taking votes.",
                        "kind", [kind.value for kind in BallotKind], ballots)
        yield from self._milestones(session, now)

    def _milestones(self, session: Session, now: datetime) -> Iterator[Metric]:
        calendar = self.config.calendar
        amber = self.config.settings.digest.amber_within_working_days
        horizon = calendar.at(calendar.add_working_days(calendar.local_date(now), amber))
        rows = session.exec(select(Milestone).join(Case).where(
            col(Case.status).in_(OPEN_STATUSES),
            col(Milestone.status).in_([MilestoneStatus.PENDING, MilestoneStatus.OVERDUE]),
        )).all()
        signed_off = set(session.exec(select(Milestone.case_id).where(
            Milestone.key == SIGNOFF_KEY, Milestone.status == MilestoneStatus.DONE)).all())
        overdue: Tally[tuple[str, str]] = Tally()
        at_risk: Tally[tuple[str, str]] = Tally()
        submissions = 0
        for milestone in rows:
            due_at = as_aware(milestone.due_at)
            label = (milestone.key, "true" if milestone.statutory else "false")
            if milestone.status == MilestoneStatus.OVERDUE or due_at <= now:
                overdue[label] += 1
            elif due_at <= horizon:
                at_risk[label] += 1
                if milestone.key == SUBMISSION_KEY and milestone.case_id not in signed_off:
                    submissions += 1
        keys = [(m.key, "true" if m.statutory else "false") for m in self.config.preset.milestones]
        for name, text, counts in (
            ("rrbot_milestones_overdue", "Milestones of open cases past their deadline.",
             overdue),
            ("rrbot_milestones_at_risk", f"Milestones due within {amber} working day(s).",
             at_risk),
        ):
            family = GaugeMetricFamily(name, text, labels=["milestone", "statutory"])
            for label in sorted(set(keys) | set(counts)):
                family.add_metric(list(label), counts[label])
            yield family
        risk = GaugeMetricFamily("rrbot_submissions_at_risk", "Submissions to the National Panel"
                                 " due within the horizon before the partners signed off.")
        risk.add_metric([], submissions)
        yield risk


def _by_label(
    name: str, text: str, label: str, values: list[str], counts: Tally[str]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=[label])
    for value in sorted(set(values) | set(counts)):
        family.add_metric([value], counts[value])
    return family


def _stamp(instant: datetime | None) -> float:
    return instant.timestamp() if instant is not None else 0.0
