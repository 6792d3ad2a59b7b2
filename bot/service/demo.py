"""`rrbot demo`: a whole fictional Rapid Review on a simulated clock, on the embedded default."""

from __future__ import annotations

import io
import mailbox
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from sqlmodel import col, select

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.members import members
from bot.ballots.voting import cast_vote
from bot.cases.lifecycle import mark_milestone_done
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config, config_from_document
from bot.engine.step import Engine
from bot.process.preset import SUBMISSION_KEY, partners_needed
from bot.process.working_days import LONDON
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, OutboxMessage
from bot.store.statuses import BallotKind, BallotStatus, CaseStatus, OutboxChannel

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
AUTHSERV = "mx.exampleshire.example"
# What each kind of message means to a business manager reading the demo.
PURPOSES = {
    "referral_ack": "acknowledged the referral", "referral_copy": "copied the referral",
    "agency_request": "asked for information", "agency_reminder": "reminded",
    "agency_final_reminder": "sent the final reminder", "agency_escalation": "ESCALATED",
    "agency_receipt": "confirmed receipt", "agency_extension": "extended",
    "agency_flag": "flagged a reply", "signoff_request": "asked to sign off",
    "submission": "SUBMITTED the report", "submission_outcome": "told of the submission",
    "submission_risk": "warned: submission at risk", "decision_feedback": "fed back",
    "milestone_reminder": "reminded of a deadline", "milestone_overdue": "warned: overdue",
    "digest": "sent the daily digest", "weekly_summary": "sent the weekly summary",
    "ballot_alert": "alerted about a ballot", "incomplete_referral": "flagged the form",
    "vote_unclear": "told how to vote by reply",
}


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left its files and when the report went."""

    folder: Path
    reference: str
    submitted_at: datetime | None
    cutoff: datetime
    # The simulated clock's last instant.
    ended: datetime


def demo_config(folder: Path, preset: str) -> Config:
    """Build the example partnership on the embedded default, every agency asked."""
    # The demo's changes to the example are made in its text, so that the config.toml left
    # in the folder is the one the demo ran and `rrbot cases --config` shows the same case.
    text = EXAMPLE.read_text(encoding="utf-8")
    for example, demo in (('preset = "oldham"', f'preset = "{preset}"'),
                          ("closure_dates = [2026-12-29, 2026-12-30, 2026-12-31]",
                           "closure_dates = []"),
                          ("health_port = 8765", "health_port = 0"),
                          ("always_ask = false", "always_ask = true")):
        if example not in text:
            raise ValueError(f"config.example.toml no longer has {example!r} for the demo")
        text = text.replace(example, demo)
    # The demo shows the preset's own quorum, not the example partnership's override of it.
    text = re.sub(r"(?ms)^\[process\.quorum\]\n.*?(?=^\[)", "", text)
    document: dict[str, Any] = tomllib.loads(text)
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return config_from_document(document, "demo", source=folder / "config.toml")


def run_demo(folder: Path, start: datetime, preset: str, console: Console) -> DemoResult:
    """Step a fictional case from referral to submission and print each thing the bot does."""
    folder.mkdir(parents=True, exist_ok=True)
    config = demo_config(folder, preset)
    chat_log = (folder / "chat.log").open("w", encoding="utf-8")
    from bot.adapters.chat.console import ConsoleChat

    engine = build_engine(config, chat=ConsoleChat(chat_log))
    calendar = config.calendar
    day0 = calendar.day0(start)
    inbox = folder / config.settings.mailbox.maildir.path / "inbox"
    # Creating the Maildir makes its new/, cur/ and tmp/ folders.
    mailbox.Maildir(str(inbox))
    story = Story(engine, config, inbox, day0)
    script = sorted(story.script(start), key=lambda event: event[0])
    submission_day = config.preset.milestone(SUBMISSION_KEY).day or 15
    end = calendar.at(calendar.day_n(day0, submission_day), time(17, 30))
    seen_outbox = seen_audit = 0
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("Day {task.completed:.0f} of {task.total:.0f}"),
                        console=console, transient=True)
    task = progress.add_task("Rapid Review", total=submission_day)
    with progress:
        now = start
        while now <= end:
            # Each scripted event happens at the first step at or after its time.
            while script and script[0][0] <= now:
                script.pop(0)[1](now)
            engine.step(now)
            seen_outbox, seen_audit = story.report(now, seen_outbox, seen_audit, progress)
            day = calendar.working_days_between(day0, calendar.local_date(now))
            progress.update(task, completed=min(day, submission_day))
            now = _next_instant(now)
    chat_log.close()
    with transaction(engine.database) as session:
        case = session.exec(select(Case)).one()
        cutoff = story.cutoff(session, case)
        result = DemoResult(folder, case.reference, case.submitted_at, cutoff, end)
    _write_digest(folder, config)
    engine.database.dispose()
    return result


def _next_instant(now: datetime) -> datetime:
    # Every half hour in the working day, every three hours at night.
    hour = now.astimezone(LONDON).hour
    return now + (timedelta(minutes=30) if 8 <= hour < 18 else timedelta(hours=3))


class Story:
    """The fictional case: who writes when, and what the bot's actions look like."""

    def __init__(self, engine: Engine, config: Config, inbox: Path, day0: date):
        self.engine, self.config, self.inbox, self.day0 = engine, config, inbox, day0
        self.reference = ""
        self.delivered = 0

    def at(self, day: int, clock: str) -> datetime:
        """Return the instant of a wall-clock time on working day N of the case."""
        calendar = self.config.calendar
        return calendar.at(calendar.day_n(self.day0, day), time.fromisoformat(clock))

    def script(self, start: datetime) -> list[tuple[datetime, Callable[[datetime], None]]]:
        """Every scripted event, at instants on the simulated clock's half-hour grid."""
        preset = self.config.preset
        decision_day = max(1, preset.milestone("partner_decision").day or 1)
        returns_day = max(decision_day + 3, preset.milestone("agency_returns_due").day or 7)
        submission_day = preset.milestone(SUBMISSION_KEY).day or 15
        # A decision due within hours (Doncaster's 48) is taken the same day, before the
        # ballot closes over the weekend; one due by Day N is taken that morning.
        decided_at = (start + timedelta(hours=2) if preset.milestone("partner_decision").hours
                      else self.at(decision_day, "10:00"))
        return [
            (start, self._referral),
            (decided_at, self._decide),
            (self.at(decision_day + 1, "11:00"), self._reply("gp", "return")),
            (self.at(returns_day - 1, "10:00"), self._reply("hospital", "no_involvement")),
            (self.at(returns_day, "12:00"), self._reply("school", "return")),
            (self.at(returns_day + 2, "10:00"), self._reply("housing", "return")),
            (self.at(max(decision_day, 3), "11:00"), self._record("notify_national_panel")),
            (self.at(returns_day + 2, "15:00"), self._record("collation")),
            (self.at(submission_day - 4, "12:00"), self._meeting),
            (self.at(submission_day - 3, "10:00"), self._report(1)),
            (self.at(submission_day - 3, "15:00"),
             self._vote(BallotKind.SIGNOFF, "request_changes", 1)),
            (self.at(submission_day - 2, "10:00"), self._report(2)),
        ] + [
            # As many partners approve version 2 as the preset's sign-off rule needs.
            (self.at(submission_day - 1, clock),
             self._vote(BallotKind.SIGNOFF, "approve", index))
            for clock, index in zip(("11:00", "14:00", "15:00"), (0, 2, 1), strict=False)
        ][:partners_needed(preset.quorum.signoff)]

    def _referral(self, now: datetime) -> None:
        body = ("Name of child: Ellis Fairweather-Demo\nDate of birth: 03/04/2021\n"
                "Home address: 7 Fictional Close, Exampleshire\nDate of incident: "
                f"{now.astimezone(LONDON):%d/%m/%Y}\n"
                "Agencies involved: Exampleshire Education Safeguarding, Exampleshire Homes\n"
                "Reason for referral: serious head injury; the account given is inconsistent.\n")
        self._deliver("robin.nurse@hospital.example", "Robin Named Nurse", "hospital.example",
                      "Serious incident notification", body, now)

    def _decide(self, now: datetime) -> None:
        self._cast(BallotKind.DECISION, "rapid_review", now, "Serious harm and abuse is suspected.")

    def _reply(self, agency_key: str, kind: str) -> Callable[[datetime], None]:
        def reply(now: datetime) -> None:
            agency = next(a for a in self.config.settings.agencies if a.key == agency_key)
            contact = agency.contacts[0]
            domain = contact.email.rpartition("@")[2]
            text = ("We have checked our records: no involvement with this family."
                    if kind == "no_involvement" else "Please find our completed return attached.")
            attachment = None if kind == "no_involvement" else (
                f"{agency_key}-return.docx", _docx(f"{agency.name} single agency summary"))
            self._deliver(contact.email, contact.name, domain,
                          f"RE: [{self._case_reference()}] Rapid Review information request",
                          text, now, attachment)
        return reply

    def _record(self, milestone: str) -> Callable[[datetime], None]:
        def record(now: datetime) -> None:
            # The business manager records a step done outside the bot (rrbot milestone-done).
            with transaction(self.engine.database) as session:
                case = session.exec(select(Case)).one()
                if milestone in {m.key for m in self.config.preset.milestones}:
                    mark_milestone_done(session, self.config, case, milestone, now, "demo")
        return record

    def _meeting(self, now: datetime) -> None:
        with transaction(self.engine.database) as session:
            case = session.exec(select(Case)).one()
            mark_milestone_done(session, self.config, case, "rr_meeting", now, "demo")
            if CaseStatus.MEETING_HELD in TRANSITIONS[case.status]:
                transition(session, case, CaseStatus.MEETING_HELD, "demo", now)

    def _report(self, version: int) -> Callable[[datetime], None]:
        def report(now: datetime) -> None:
            manager = self.config.settings.business_manager
            self._deliver(manager.email, manager.name, "exampleshire.example",
                          f"REPORT [{self._case_reference()}] version {version}",
                          f"Version {version} of the Rapid Review report.", now,
                          (f"rapid-review-report-v{version}.docx",
                           _docx(f"Rapid Review report, version {version}")))
        return report

    def _vote(self, kind: str, choice: str, partner_index: int) -> Callable[[datetime], None]:
        def vote(now: datetime) -> None:
            self._cast(kind, choice, now, "" if choice == "approve"
                       else "Please add the school's account to section 4.", partner_index)
        return vote

    def _cast(self, kind: str, choice: str, now: datetime, rationale: str,
              partner_index: int | None = None) -> None:
        with transaction(self.engine.database) as session:
            case = session.exec(select(Case)).one()
            ballot = ballot_for_case(session, case, kind)
            if ballot is None or ballot.status != BallotStatus.OPEN:
                return
            leads = [m for m in members(self.config) if m.role == "lead"]
            rule = getattr(self.config.preset.quorum, kind)
            voters = ([leads[partner_index]] if partner_index is not None
                      else leads[:partners_needed(rule)])
            for member in voters:
                cast_vote(session, self.config, ballot.id or 0, member, choice, rationale, now,
                          source="chat", delivery_key=f"demo:{ballot.id}:{member.email}")

    def _case_reference(self) -> str:
        with transaction(self.engine.database) as session:
            return session.exec(select(Case.reference)).one()

    def _deliver(self, sender: str, name: str, domain: str, subject: str, body: str,
                 now: datetime, attachment: tuple[str, bytes] | None = None) -> None:
        message = EmailMessage()
        # Mail arrives through the partnership's own boundary, which authenticated it.
        message["Authentication-Results"] = (
            f"{AUTHSERV}; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain};"
            f" dmarc=pass header.from={domain}")
        message["Received"] = (f"from mail.{domain} by {AUTHSERV} with ESMTPS;"
                               f" {format_datetime(now)}")
        message["From"] = f"{name} <{sender}>"
        message["To"] = self.config.settings.mailbox.address
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain=domain)
        message.set_content(body)
        if attachment is not None:
            message.add_attachment(attachment[1], maintype="application",
                                   subtype="vnd.openxmlformats-officedocument"
                                           ".wordprocessingml.document",
                                   filename=attachment[0])
        # The mail server names and dates a delivered message by its arrival, which the bot
        # takes as the arrival time; here that is the simulated instant, not the real one.
        self.delivered += 1
        name = f"{int(now.timestamp())}.D{self.delivered}.rrbot-demo"
        temporary = self.inbox / "tmp" / name
        temporary.write_bytes(message.as_bytes())
        os.utime(temporary, (now.timestamp(), now.timestamp()))
        temporary.rename(self.inbox / "new" / name)

    def report(self, now: datetime, seen_outbox: int, seen_audit: int,
               progress: Progress) -> tuple[int, int]:
        """Print what the bot did at this instant: mail sent, decisions, versions."""
        calendar = self.config.calendar
        with transaction(self.engine.database) as session:
            sent = session.exec(select(OutboxMessage).where(
                col(OutboxMessage.id) > seen_outbox, OutboxMessage.channel == OutboxChannel.MAIL)
                .order_by(col(OutboxMessage.id))).all()
            notable = session.exec(select(AuditEntry).where(
                col(AuditEntry.id) > seen_audit,
                col(AuditEntry.action).in_(["case_opened", "ballot_closed", "report_version",
                                            "agency_reply", "submission_confirmed"]))
                .order_by(col(AuditEntry.id))).all()
            last_audit = session.exec(select(AuditEntry.id).order_by(
                col(AuditEntry.id).desc())).first() or seen_audit
        local = now.astimezone(LONDON)
        day = calendar.working_days_between(self.day0, local.date())
        stamp = f"Day {day:>2} {local:%a %d %b %H:%M}"
        for entry in notable:
            progress.console.print(f"{stamp}  [bold]{_describe(entry)}[/bold]")
        for row in sent:
            what = PURPOSES.get(row.purpose, row.purpose.replace("_", " "))
            progress.console.print(f"{stamp}  {what:<30} -> {row.recipients}", markup=False,
                                   highlight=False)
        return (sent[-1].id or seen_outbox) if sent else seen_outbox, last_audit

    def cutoff(self, session: Any, case: Case) -> datetime:
        """Return the submission's cut-off instant for this case."""
        from bot.store.models import Milestone

        return session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.key == SUBMISSION_KEY)).one().due_at


def _describe(entry: AuditEntry) -> str:
    import json

    detail = json.loads(entry.detail)
    if entry.action == "case_opened":
        return f"case {detail['reference']} opened ({detail['preset']})"
    if entry.action == "ballot_closed":
        return f"{detail['kind']} ballot closed: {detail['outcome']}"
    if entry.action == "report_version":
        return f"report version {detail['version']} received ({detail['sha256'][:12]})"
    if entry.action == "agency_reply":
        return f"{detail['agency']} replied: {detail['kind'].replace('_', ' ')}"
    return "submission confirmed in Sent"


def _docx(title: str) -> bytes:
    from docx import Document as WordDocument

    document = WordDocument()
    document.add_heading(title, level=1)
    document.add_paragraph("A fictional document made by rrbot demo.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _write_digest(folder: Path, config: Config) -> None:
    # The newest digest in Sent is kept as a web page to open in a browser.
    sent = mailbox.Maildir(str(folder / config.settings.mailbox.maildir.path / "sent"),
                           create=False)
    digests = [message_from_bytes(sent.get_bytes(key), policy=policy.default)
               for key in sent.keys()]
    digests = [m for m in digests if "digest" in str(m.get("X-RRBot-Key", ""))]
    if digests:
        newest = max(digests, key=lambda m: parsedate_to_datetime(str(m["Date"])))
        html = newest.get_body(preferencelist=("html",))
        if html is not None:
            (folder / "digest.html").write_text(html.get_content(), encoding="utf-8")
