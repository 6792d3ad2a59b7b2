"""A Warrington case on a simulated clock: pre-filled forms out, returns in, the papers built.

Referral at 10:00 on Monday 2 March 2026 (Day 0; no bank holiday until Easter). The partners
decide on Wednesday 4 March (Day 2); requests go with Template D and the Excel chronology,
filled from the referral; returns are due on Day 9 (Friday 13 March, 17:00); the collation
step is Day 10 (Monday 16 March), so the papers go at 09:00 that day; the meeting is Day 13
(Thursday 19 March).
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from docx import Document as open_word
from openpyxl import load_workbook
from sqlmodel import col, select

from bot.config import Config
from bot.engine.step import Engine
from bot.kernel.mailbox import FetchedMail
from bot.process.working_days import parse_instant
from bot.store.db import transaction
from bot.store.models import Case, OutboxMessage
from tests.corpus.make_corpus import trace
from tests.factories import build_config, example_document
from tests.handlers.world import make_engine, world_changes
from tests.papers.kit import (
    Row,
    answered_form,
    chronolator_text,
    chronology_xlsx,
    csv_return,
    scanned_pdf,
)
from tests.scenarios.test_agency_scenario import decide_rapid_review

CHILD, FATHER, MOTHER = "Jessamy Quintrell", "Darren Quintrell", "Mairead Quintrell"
ADDRESS = "14 Larkspur Close, Exampletown EX1 2AB"
REFERRAL = parse_instant("2026-03-02T10:00")
DECIDED = parse_instant("2026-03-04T12:00")
COLLATION = parse_instant("2026-03-16T09:00")
END = parse_instant("2026-03-17T12:00")
EXTRA_AGENCIES = {"youth_justice": "Exampleshire Youth Justice Service",
                  "probation": "Exampleshire Probation", "health_visiting": "Exampleshire 0-19"}
FORMS = ["warrington-template-d.docx", "warrington-chronology.xlsx"]
CHAIR = "quinn.chair@exampleshire.example"

# Each agency's chronology rows; the school's return arrives after the collation.
RETURNS: dict[str, list[Row]] = {
    "gp": [("14/07/2019", "", f"{CHILD} registered at birth", "GP record"),
           ("03/02/2026", "10:00", f"{CHILD} attended with bruising to the arm", "GP record"),
           ("March 2025", "", f"{MOTHER} seen for low mood", "GP record")],
    "hospital": [("03/02/2026", "10:00", "Child attended with bruising to the arm; "
                  "paediatrician", "ED notes"),
                 ("20/12/2025", "23:15", "Attendance with a head injury after a fall", "ED")],
    "housing": [("01/06/2025 - 30/06/2025", "", f"Rent arrears; {FATHER} contacted", "Tenancy"),
                ("12/01/2026", "", "Repairs visit; home cold and damp", "Repairs log")],
    "school": [("05/02/2026", "", f"{CHILD} excluded after fighting in the playground",
                "SIMS"), ("Sept 2025", "", "Started in Year 2", "Admissions")],
    "youth_justice": [("09/02/2026", "", f"{FATHER} excluded after fighting in the "
                       "playground", "Case record"), ("2025", "", "No contact", "Checks")],
    "probation": [("18/11/2025", "14:00", f"{FATHER} supervision appointment missed",
                   "nDelius"), ("25/11/2025", "", "Home visit, partner present", "nDelius")],
}
ARRIVALS = {"gp": "2026-03-09T11:00", "hospital": "2026-03-10T09:00",
            "housing": "2026-03-11T15:00", "youth_justice": "2026-03-12T10:00",
            "probation": "2026-03-12T14:00", "health_visiting": "2026-03-13T09:00",
            "school": "2026-03-17T10:00"}


def scenario_config(tmp_path: Path) -> Config:
    agencies = [{**agency, "always_ask": True} for agency in example_document()["agencies"]]
    for key, name in EXTRA_AGENCIES.items():
        domain = f"{key.replace('_', '')}.example"
        agencies.append({"key": key, "name": name, "always_ask": True, "domains": [domain],
                         "contacts": [{"name": f"{name} lead", "email": f"lead@{domain}"}]})
    return build_config(tmp_path, preset="warrington", agencies=agencies, **world_changes(
        tmp_path, **{"agency_requests.forms": FORMS,
                     "papers.chair": {"name": "Quinn Chair", "email": CHAIR}}))


def email(sender: str, subject: str, body: str, files: dict[str, bytes], at: datetime) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, "rapidreview@exampleshire.example"
    message["Subject"], message["Message-ID"] = subject, f"<{abs(hash(subject + sender))}@x>"
    message["Date"] = at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    message.set_content(body)
    for name, content in files.items():
        message.add_attachment(content, maintype="application", subtype="octet-stream",
                               filename=name)
    return trace(sender.rpartition("@")[2]).encode() + message.as_bytes()


def referral_form() -> bytes:
    document = open_word()
    document.add_heading("Referral for a Child Safeguarding Practice Review", level=1)
    table = document.add_table(rows=0, cols=2)
    for label, value in [("Full name of Child", CHILD), ("Date of Birth", "14/07/2019"),
                         ("Home address", ADDRESS), ("Gender", "Female"),
                         ("Date of Death or Date of Serious Incident", "01/03/2026"),
                         ("Agencies known to be involved", "GP, hospital, housing"),
                         ("Reason for referral", "Serious injury; neglect suspected")]:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    family = document.add_table(rows=1, cols=4)
    for cell, heading in zip(family.rows[0].cells, ["Full name", "Relationship to child",
                                                    "Address", "Date of Birth"], strict=True):
        cell.text = heading
    for person in [(FATHER, "Father", ADDRESS, "02/05/1990"),
                   (MOTHER, "Mother", ADDRESS, "11/11/1992")]:
        for cell, value in zip(family.add_row().cells, person, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def agency_return(config: Config, key: str, template_d: bytes, xlsx: bytes) -> dict[str, bytes]:
    rows = RETURNS.get(key, [])
    if key == "youth_justice":
        return {"chronology.csv": csv_return(rows)}
    if key == "probation":
        return {"probation-chronology.txt": chronolator_text(rows, "Probation")}
    if key == "health_visiting":
        return {"scanned-form.pdf": scanned_pdf()}
    form = answered_form(template_d, {
        "Declaration of involvement": "Yes",
        "Summary of relevant engagement": f"{config.settings.agency(key).name} knew the family.",
    })
    return {f"{key}-form.docx": form, f"{key}-chronology.xlsx": chronology_xlsx(rows, xlsx)}


def attachments_of(row: OutboxMessage) -> dict[str, bytes]:
    message = message_from_bytes(row.payload, policy=policy.default)
    return {part.get_filename() or "": part.get_content() for part in message.iter_attachments()}


def sheet_rows(content: bytes) -> list[list[Any]]:
    sheet = load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = next(index for index, row in enumerate(rows) if row and row[0] == "No.")
    return rows[header:]


def run(tmp_path: Path) -> tuple[Engine, dict[str, Any]]:
    config = scenario_config(tmp_path)
    engine, mailbox = make_engine(config, tmp_path)
    mailbox.inbox.append(FetchedMail("referral", email(
        "lee.safeguarding@gp.example", "Referral: serious incident", "Referral attached.",
        {"referral-form.docx": referral_form()}, REFERRAL), arrived_at=REFERRAL))
    arrivals = {parse_instant(at): key for key, at in ARRIVALS.items()}
    seen: dict[str, Any] = {"chronology_at": []}
    now = REFERRAL
    while now <= END:
        with transaction(engine.database) as session:
            case = session.exec(select(Case)).first()
            if now == DECIDED and case is not None:
                decide_rapid_review(session, config, case, now)
        if now in arrivals:
            key = arrivals[now]
            with transaction(engine.database) as session:
                request = session.exec(select(OutboxMessage).where(
                    OutboxMessage.idempotency_key == f"RR-2026-001:agency:{key}:request")).one()
                sent = attachments_of(request)
            template_d = sent["RR-2026-001-" + key + "-warrington-template-d.docx"]
            xlsx = sent["RR-2026-001-" + key + "-warrington-chronology.xlsx"]
            sender = config.settings.agency(key).contacts[0].email
            mailbox.inbox.append(FetchedMail(f"return-{key}", email(
                sender, "RE: [RR-2026-001] Rapid Review information request", "Attached.",
                agency_return(config, key, template_d, xlsx), now), arrived_at=now))
        engine.step(now)
        with transaction(engine.database) as session:
            built = session.exec(select(OutboxMessage).where(
                OutboxMessage.purpose == "chronology")).all()
            if len(built) > len(seen["chronology_at"]):
                seen["chronology_at"].append(now)
        now += timedelta(minutes=30)
    return engine, seen


def expected_rows(keys: list[str], config: Config) -> list[tuple[str, str, str, str, str]]:
    from bot.papers.dates import read_date

    rows = []
    for key in keys:
        name = config.settings.agency(key).name
        for day, clock, event, source in RETURNS[key]:
            written = read_date(day)
            assert written is not None
            rows.append(((written.sort_key, clock, name), (day, clock, name, event, source)))
    return [row for _key, row in sorted(rows)]


@pytest.mark.slow
def test_a_warrington_case_gets_its_forms_its_chronology_and_its_draft(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Given a Warrington case whose seven agencies return in every shape, one late,
    engine, seen = run(tmp_path)
    config = engine.config
    with transaction(engine.database) as session:
        outbox = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        requests = {row.idempotency_key: row for row in outbox if row.purpose == "agency_request"}
        # then each request carries Template D and the chronology filled from the referral,
        gp_request = attachments_of(requests["RR-2026-001:agency:gp:request"])
        form = open_word(io.BytesIO(gp_request["RR-2026-001-gp-warrington-template-d.docx"]))
        text = "\n".join([cell.text for table in form.tables for row in table.rows
                          for cell in row.cells] + [p.text for p in form.paragraphs])
        for shown in (CHILD, "14 July 2019", ADDRESS, FATHER, MOTHER, "Exampleshire GP "
                      "Federation", "17:00 on Friday 13 March 2026", "Female"):
            assert shown in text
        sheet = load_workbook(io.BytesIO(gp_request["RR-2026-001-gp-warrington-chronology"
                                                    ".xlsx"])).worksheets[0]
        assert [sheet["B2"].value, sheet["B4"].value] == ["RR-2026-001", CHILD]
        # and its email names the child as the form does (the subject does not).
        body = message_from_bytes(requests["RR-2026-001:agency:gp:request"].payload,
                                  policy=policy.default).get_body(preferencelist=("plain",))
        assert body is not None and CHILD in body.get_content() and ADDRESS in body.get_content()
        assert all(CHILD not in row.payload.decode("utf-8", "replace").split("\n\n")[0]
                   for row in outbox)
        # The scanned PDF is flagged to the business manager the step it is read.
        flags = [row for row in outbox if row.purpose == "return_unreadable"]
        assert len(flags) == 1 and flags[0].created_at == parse_instant("2026-03-13T09:00")
        # The chronology went at the collation instant, and again for the late return.
        assert seen["chronology_at"] == [COLLATION, parse_instant("2026-03-17T10:00")]
        first, late = [row for row in outbox if row.purpose == "chronology"]
        assert set(first.recipients.split(", ")) == {CHAIR, config.settings.business_manager.email}
        first_files, late_files = attachments_of(first), attachments_of(late)
    on_time = ["gp", "hospital", "housing", "youth_justice", "probation"]
    for files, keys in ((first_files, on_time), (late_files, [*on_time, "school"])):
        table = sheet_rows(files["RR-2026-001-chronology-named.xlsx"])
        # Every row of every readable return, in date order, row by row.
        assert [(row[1], row[2] or "", row[4], row[5], row[6]) for row in table[1:]] == \
            expected_rows(keys, config)
        anonymised = files["RR-2026-001-chronology-anonymised.xlsx"]
        words = " ".join(str(cell) for row in sheet_rows(anonymised) for cell in row if cell)
        title = " ".join(str(row[0]) for row in load_workbook(io.BytesIO(anonymised))
                         .worksheets[0].iter_rows(values_only=True, max_row=8) if row[0])
        for name in (CHILD, FATHER, MOTHER, "Jessamy", "Quintrell", "Darren", "Mairead"):
            assert name not in words and name not in title
            word_text = "\n".join(p.text for p in open_word(io.BytesIO(
                files["RR-2026-001-chronology-anonymised.docx"])).paragraphs)
            assert name not in word_text
        assert "JQ" in title and "DQ excluded" in words
        assert "scanned-form.pdf from Exampleshire 0-19" in title
    # The contradiction (the same exclusion, two dates) and the duplicate are flagged.
    late_table = sheet_rows(late_files["RR-2026-001-chronology-named.xlsx"])
    checks = {row[5]: row[7] or "" for row in late_table[1:]}
    assert "on another date" in checks[f"{CHILD} excluded after fighting in the playground"]
    assert "also recorded by another agency" in checks[
        f"{CHILD} attended with bruising to the arm"]
    # The draft report goes to the business manager with the chronology as its appendix.
    draft = open_word(io.BytesIO(attachments_of([row for row in outbox
                                                  if row.purpose == "report_draft"][-1])[
        "RR-2026-001-draft-report.docx"]))
    draft_text = "\n".join(cell.text for table in draft.tables for row in table.rows
                           for cell in row.cells)
    assert CHILD in draft_text and "[referral received Monday 2 March 2026]" in draft_text
    assert "Exampleshire Homes knew the family." in "\n".join(p.text for p in draft.paragraphs)
    # No INFO log line names the child.
    assert CHILD not in caplog.text and "Quintrell" not in caplog.text
