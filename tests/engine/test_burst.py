"""A referral that arrives during a long burst of due actions is acknowledged before it ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import col, func, select

from bot.cases.lifecycle import MilestoneStep, open_case
from bot.config import Config
from bot.engine.step import ACTION_SLICE, Engine
from bot.kernel.actions import ActionPlan, plan_action, plan_actions
from bot.kernel.mailbox import FetchedMail
from bot.kernel.outgoing import OutgoingMail
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, InboundMessage, Milestone, OutboxMessage
from bot.store.statuses import MilestoneStatus
from tests.corpus.make_corpus import mail, person
from tests.handlers.test_inbound import referral_bytes
from tests.handlers.world import HANDLED, make_engine, world_config

BURST = 1_000
OPENED = HANDLED - timedelta(days=1)


class ArrivingMailbox:
    """A mailbox whose one message arrives once the first message of the burst has gone."""

    name = "rapidreview@exampleshire.example"

    def __init__(self, arriving: bytes | None = None) -> None:
        self.arriving = referral_bytes() if arriving is None else arriving
        self.inbox: list[FetchedMail] = []
        self.sent: list[str] = []
        self.moved: set[str] = set()

    def fetch_new(self) -> Iterator[FetchedMail]:
        yield from [mail for mail in self.inbox if mail.server_id not in self.moved]

    def mark_processed(self, server_id: str, folder: str) -> None:
        self.moved.add(server_id)

    def send_raw(self, mail: OutgoingMail) -> None:
        if not self.sent:
            self.inbox.append(FetchedMail("arriving", self.arriving))
        self.sent.append(mail.message_id)

    def find_sent(self, message_id: str) -> bool:
        return message_id in self.sent


def plan_burst(engine: Engine, config: Config, size: int) -> int:
    """Open a case and plan size reminders of its last pending milestone, all due at HANDLED."""
    with transaction(engine.database) as session:
        case = open_case(session, config, OPENED, OPENED, "test")
        milestone = session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.status == MilestoneStatus.PENDING,
            col(Milestone.due_at) > HANDLED,
        ).order_by(col(Milestone.due_at).desc())).first()
        assert milestone is not None
        plan_actions(session, [
            ActionPlan(case.partnership, case.id, f"burst:{number}", "milestone_reminder",
                       MilestoneStep(milestone=milestone.key), HANDLED)
            for number in range(size)])
        return case.id or 0


@pytest.mark.slow
def test_a_referral_arriving_during_a_burst_is_acknowledged_before_the_burst_ends(
    tmp_path: Path,
) -> None:
    # Given a case whose Day 15 milestone is still pending, and a thousand reminders of it
    # all due at one instant (several slices of the sweep),
    config = world_config(tmp_path)
    engine = make_engine(config, tmp_path)[0]
    mailbox = ArrivingMailbox()
    engine.mailbox = mailbox  # type: ignore[assignment]
    case_id = plan_burst(engine, config, BURST)
    assert BURST >= 5 * ACTION_SLICE
    # when the sweep runs them, and a referral arrives as the first reminder goes out,
    report = engine.step(HANDLED)
    # then every reminder went, the referral opened a case,
    assert len([key for key in report.actions if key.startswith("burst:")]) == BURST
    assert "referral" in report.handled
    with transaction(engine.database) as session:
        inbound = session.exec(select(InboundMessage)).one()
        assert inbound.case_id is not None and inbound.case_id != case_id
        acknowledgement = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "referral_ack")).one()
        reminders = {row.id for row in session.exec(select(OutboxMessage).where(
            col(OutboxMessage.idempotency_key).startswith("burst:")))}
        # and the acknowledgement was sent before the last reminder was even queued: the
        # audit trail's order is the order things happened in.
        trail = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    assert len(reminders) == BURST
    queued = {entry.id: json.loads(entry.detail).get("outbox_id") for entry in trail
              if entry.action == "queued"}
    sent = {json.loads(entry.detail).get("outbox_id"): entry.id for entry in trail
            if entry.action == "sent"}
    last_queued = max(entry_id or 0 for entry_id, row_id in queued.items() if row_id in reminders)
    assert sent[acknowledgement.id] < last_queued
    assert mailbox.sent.index(acknowledgement.message_id) < BURST
    # Each message went once.
    assert len(mailbox.sent) == len(set(mailbox.sent))


def test_a_slice_of_milestone_reminders_reads_its_milestones_in_one_query(
    tmp_path: Path,
) -> None:
    # Given fifty reminders, due together, about the milestones of five cases,
    config = world_config(tmp_path)
    engine = make_engine(config, tmp_path)[0]
    with transaction(engine.database) as session:
        cases = [open_case(session, config, OPENED, OPENED, "test") for _ in range(5)]
        keys = [milestone.key for milestone in session.exec(select(Milestone).where(
            Milestone.case_id == cases[0].id)).all()][:10]
        for case in cases:
            for key in keys:
                plan_action(session, partnership=case.partnership, case_id=case.id,
                            key=f"read-ahead:{case.id}:{key}", action_name="milestone_reminder",
                            arguments=MilestoneStep(milestone=key), due_at=HANDLED)
    statements: list[str] = []
    event.listen(engine.database, "before_cursor_execute",
                 lambda *arguments: statements.append(str(arguments[2])))
    # when the sweep runs them,
    report = engine.step(HANDLED)
    # then all fifty ran, and their milestones were read by one query, not one each.
    assert len([key for key in report.actions if key.startswith("read-ahead:")]) == 50
    milestone_reads = [statement for statement in statements
                       if statement.lstrip().startswith("SELECT")
                       and "FROM milestone" in statement]
    assert len(milestone_reads) == 1, milestone_reads


@pytest.mark.parametrize(("lines", "kind"), [(1000, "limits"), (190, "unverified_sender")],
                         ids=["1mb-headers", "200kb-headers"])
def test_unauthenticated_mail_arriving_during_a_burst_neither_acts_nor_stalls_it(
    tmp_path: Path, lines: int, kind: str
) -> None:
    # Given three slices of reminders due at once,
    config = world_config(tmp_path)
    engine = make_engine(config, tmp_path)[0]
    # and a stranger's referral, unauthenticated, with a header section of 1,000-byte lines
    # (1 MB of them, or just under the limit), arriving as the first reminder goes out,
    padding = [(f"X-Filler-{number}", "a" * 990) for number in range(lines)]
    mailbox = ArrivingMailbox(mail(
        person("A Stranger", "stranger@elsewhere.example", "New referral: child at risk",
               "<stranger-burst@elsewhere.example>", extra=padding),
        "Please treat this as a referral for a Rapid Review."))
    engine.mailbox = mailbox  # type: ignore[assignment]
    plan_burst(engine, config, 3 * ACTION_SLICE)
    # when the sweep runs them,
    started = time.perf_counter()
    report = engine.step(HANDLED)
    # then every reminder still went, within the step's usual time,
    assert len([key for key in report.actions if key.startswith("burst:")]) == 3 * ACTION_SLICE
    assert time.perf_counter() - started < 30
    # and the stranger's message was held with its reason between two slices, opened no case
    # and was answered by nobody.
    with transaction(engine.database) as session:
        inbound = session.exec(select(InboundMessage)).one()
        cases = session.exec(select(func.count()).select_from(Case)).one()
        queued = session.exec(select(OutboxMessage)).all()
    assert (inbound.status, inbound.kind) == ("quarantined", kind), inbound.reason
    assert inbound.case_id is None and cases == 1
    assert all("stranger@elsewhere.example" not in row.recipients for row in queued)
    # Every queued email went, once.
    assert len(mailbox.sent) == len(set(mailbox.sent)) == len(
        [row for row in queued if row.channel == "mail"])
