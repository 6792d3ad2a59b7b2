"""Trust at the boundary: forged machine mail changes nothing, reused ids and injected headers.

Each test starts from a copy of the corpus world (two open cases; case 2's requests carry the
unkeyed Message-IDs of a bot from before the upgrade).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.digest.attention import quarantine_summary
from bot.engine.step import Engine
from bot.kernel.headers import UnsafeHeader, clean_message_id, is_keyed, message_id_for
from bot.kernel.mailbox import FetchedMail
from bot.kernel.outbox import enqueue_mail
from bot.store.db import transaction
from bot.store.models import AgencyRequest, InboundMessage, OutboxMessage
from tests.corpus.make_corpus import mail, person, trace

# The corpus world, built once per module and copied for each test.
from tests.corpus.test_corpus import world_database  # noqa: F401
from tests.handlers.world import HANDLED, WORLD_SECRET, deliver, make_engine, world_config
from tests.recording import RecordingMailbox

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.fixture
def world(
    world_database: Path, tmp_path: Path  # noqa: F811 - the corpus world fixture.
) -> Iterator[tuple[Engine, RecordingMailbox]]:
    shutil.copy(world_database, tmp_path / "rrbot.sqlite3")
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    yield engine, mailbox
    engine.database.dispose()


def outbox_size(engine: Engine) -> int:
    with transaction(engine.database) as session:
        return session.exec(select(func.count()).select_from(OutboxMessage)).one()


def contact_problems(engine: Engine) -> list[str | None]:
    with transaction(engine.database) as session:
        return [request.contact_problem for request in session.exec(
            select(AgencyRequest).order_by(col(AgencyRequest.id)))]


def test_forged_delivery_reports_and_auto_replies_quoting_old_ids_change_nothing(
    world: tuple[Engine, RecordingMailbox]
) -> None:
    engine, mailbox = world
    before, problems = outbox_size(engine), contact_problems(engine)
    # Given forged DSNs and an out-of-office reply quoting case 2's real, unkeyed ids,
    names = ["dsn_forged_unkeyed_legacy_id.eml", "dsn_forged_unkeyed_housing.eml",
             "dsn_text_only_legacy_id.eml", "ooo_forged_quoting_legacy_id.eml"]
    # when each arrives,
    rows = [deliver(engine, mailbox, (CORPUS / name).read_bytes(), name) for name in names]
    # then each is kept with its reason for the business manager, nothing about any agency
    # request changed, and no email was queued or sent.
    assert [row.status for row in rows] == ["quarantined"] * 4
    assert all("nothing was changed" in (row.reason or "") for row in rows)
    assert contact_problems(engine) == problems
    assert outbox_size(engine) == before


def test_a_different_message_reusing_a_message_id_is_kept_and_counted(
    world: tuple[Engine, RecordingMailbox]
) -> None:
    engine, mailbox = world
    first = mail(person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
                        "RE: [RR-2026-001] Information request", "<same@gp.example>"),
                 "No records held.", prefix=trace("gp.example"))
    # Given a message that was handled,
    deliver(engine, mailbox, first, "first")
    # when a different message arrives under the same Message-ID,
    other = first.replace(b"No records held.", b"Please find our return attached.")
    row = deliver(engine, mailbox, other, "second")
    # then it is stored and quarantined with the reason, and the digest counts it.
    assert (row.status, row.kind) == ("quarantined", "reused_message_id")
    assert "reused Message-ID" in (row.reason or "")
    with transaction(engine.database) as session:
        summary = quarantine_summary(session, engine.config.calendar)
    assert any("reused Message-ID" in reason for reason, _count in summary.reasons)
    # And the same message delivered again by another route is not stored twice.
    again = b"Received: from relay2 by mx.exampleshire.example; Thu, 5 Mar 2026\r\n" + first
    mailbox.inbox.append(FetchedMail("third", again))
    engine.step(HANDLED)
    with transaction(engine.database) as session:
        stored = session.exec(select(func.count()).select_from(InboundMessage)).one()
    assert stored == 2


@pytest.mark.parametrize("name", sorted(path.name for path in CORPUS.glob("inject_*.eml")))
def test_nothing_injected_reaches_a_header_the_bot_sends(
    name: str, world: tuple[Engine, RecordingMailbox]
) -> None:
    engine, mailbox = world
    with transaction(engine.database) as session:
        last = session.exec(select(func.max(OutboxMessage.id))).one() or 0
    # Given a referral carrying CR LF in raw bytes, an encoded word or an RFC 2231 parameter,
    deliver(engine, mailbox, (CORPUS / name).read_bytes(), name)
    with transaction(engine.database) as session:
        queued = session.exec(select(OutboxMessage).where(col(OutboxMessage.id) > last,
                                                          OutboxMessage.channel == "mail")).all()
    # then no message the bot queued has a Bcc, or a header holding a line break or a NUL.
    for row in queued:
        assert b"\nBcc:" not in row.payload and b"\nbcc:" not in row.payload
        for part in message_from_bytes(row.payload, policy=policy.default).walk():
            for header, value in part.items():
                assert header.lower() != "bcc"
                assert not any(c in str(value) for c in "\r\n\x00"), (header, str(value))
            filename = part.get_filename()
            assert filename is None or not any(c in filename for c in "\r\n\x00")


def test_only_rfc_5322_message_ids_are_threaded_on_and_unsafe_addresses_are_refused(
    world: tuple[Engine, RecordingMailbox]
) -> None:
    engine, _mailbox = world
    # Given ids in and out of RFC 5322's form,
    assert clean_message_id(" <a.b+c@host.example> ") == "<a.b+c@host.example>"
    assert clean_message_id("<a@[192.0.2.1]>") == "<a@[192.0.2.1]>"
    for bad in ("<a b@x>", "<a@b>\r\nBcc: x", "<=?utf-8?q?=0D=0A?=@x>", "a@b", "<a@b", "<@b>"):
        assert clean_message_id(bad) is None, bad
    with transaction(engine.database) as session:
        # when a message is queued in reply to an id with an encoded word,
        row = enqueue_mail(session, partnership="exampleshire", key="t1", purpose="test",
                           sender="rapidreview@exampleshire.example", sender_name="RR",
                           to=["a@x.example"], subject="s", text="t", now=HANDLED,
                           in_reply_to="<=?utf-8?q?x=0D=0ABcc=3A_e=40e.test?=@x.example>")
        # then it is not threaded on it,
        assert b"In-Reply-To" not in row.payload and b"Bcc" not in row.payload
        # its own id is keyed with the installation's secret,
        assert is_keyed(row.message_id, WORLD_SECRET)
        assert not is_keyed(message_id_for("t1", "exampleshire.example"), WORLD_SECRET)
        # and an address holding a line break is refused.
        with pytest.raises(UnsafeHeader):
            enqueue_mail(session, partnership="exampleshire", key="t2", purpose="test",
                         sender="rapidreview@exampleshire.example", sender_name="RR",
                         to=["a@x.example\r\nBcc: e@e.test"], subject="s", text="t",
                         now=HANDLED)


@pytest.mark.parametrize("name", ["huge_header_line.eml", "huge_header_section.eml",
                                  "huge_display_name_folded.eml",
                                  "huge_display_name_one_line.eml", "huge_cc.eml",
                                  "huge_references.eml", "nbsp_forwarded_referral.eml",
                                  "html_many_open_angles.eml", "body_long_word_without_at.eml"])
def test_each_hostile_message_is_handled_in_under_a_second(
    name: str, world: tuple[Engine, RecordingMailbox]
) -> None:
    engine, mailbox = world
    raw = (CORPUS / name).read_bytes()
    # Given 1 MB headers, 100,000-character names or bodies built against our patterns,
    # The process's CPU time, so a parallel test worker on the same cores does not count.
    started = time.process_time()
    # when the message arrives and is handled,
    row = deliver(engine, mailbox, raw, name)
    # then it took under a second (our code's time: nothing here sleeps or waits).
    assert time.process_time() - started < 1.0, row.reason


@pytest.mark.parametrize(("lines", "kind", "told"), [
    # 1 MB of header lines: refused by the limits before any handler reads them.
    (1000, "limits", set()),
    # Just under the header section's limit: the sender check holds it and tells the
    # business manager at once (the path a referral from a stranger takes).
    (190, "unverified_sender", {"quarantined_referral"}),
], ids=["1mb", "200kb"])
def test_a_strangers_unauthenticated_referral_with_huge_headers_is_held_and_never_answered(
    lines: int, kind: str, told: set[str], world: tuple[Engine, RecordingMailbox]
) -> None:
    # Given a referral-looking message from a stranger, with no authentication results and a
    # header section of 1,000-byte X- lines,
    engine, mailbox = world
    padding = [(f"X-Filler-{number}", "a" * 990) for number in range(lines)]
    raw = mail(person("A Stranger", "stranger@elsewhere.example", "New referral: child at risk",
                      "<stranger-1@elsewhere.example>", extra=padding),
               "Please treat this as a referral for a Rapid Review.")
    before = outbox_size(engine)
    # The process's CPU time, so a parallel test worker on the same cores does not count.
    started = time.process_time()
    # when it arrives and the step handles it,
    row = deliver(engine, mailbox, raw, f"stranger-{lines}")
    # then it took under a second, is held with its reason, opened no case and answered
    # nobody; only the business manager is told, where the sender check holds it.
    assert time.process_time() - started < 1.0
    assert (row.status, row.kind) == ("quarantined", kind), row.reason
    with transaction(engine.database) as session:
        queued = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    new = queued[before:]
    assert all("stranger@elsewhere.example" not in sent.recipients for sent in new)
    assert {sent.purpose for sent in new} == told
