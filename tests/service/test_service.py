"""`rrbot run` as a process: health, a clean stop on SIGTERM, and a restart after SIGKILL."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.cases.lifecycle import open_case
from bot.config import load_config
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import Milestone, OutboxMessage, PlannedAction
from tests.factories import EMBEDDED_DATABASE, exactly, write_config
from tests.servers import free_port
from tests.service.run_config import make_people, referral, write_imap_config

RRBOT = str(Path(sys.executable).with_name("rrbot"))


def service_config(folder: Path, port: int) -> Path:
    """Write the example config (its embedded database) with quick sweeps on this health port."""
    return write_config(folder, database_url=EMBEDDED_DATABASE, service={
        "health_port": port, "sweep_seconds": 1, "outbox_lease_seconds": 2,
    }, mailbox={"poll_seconds": 5})


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as failing:
        return failing.code, json.loads(failing.read())


def wait_until(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)  # real-time ok: polling a real process until a bounded deadline
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


# Cases the service catches up on after downtime, in the SIGKILL test.
CAUGHT_UP_CASES = 60


def start(config: Path) -> subprocess.Popen[bytes]:
    """Start rrbot run, its output appended to service.log beside the config.

    A pipe nobody reads until the end would fill, and stop the service mid-write.
    """
    with open(config.parent / "service.log", "ab") as output:
        return subprocess.Popen([RRBOT, "run", "--config", str(config)], stdout=output,
                                stderr=subprocess.STDOUT, cwd=config.parent)


@pytest.mark.slow
def test_the_service_reports_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    # Given the service running on the embedded default,
    port = free_port()
    config = service_config(tmp_path, port)
    process = start(config)
    try:
        wait_until(lambda: health(port)[0] == 200, 30, "/healthz to answer 200")
        status, body = health(port)
        assert body["checks"]["mailbox"]["ok"] and body["checks"]["scheduler"]["ok"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert b'rrbot_open_cases{status="received"} 0.0' in answer.read()
        # when it is sent SIGTERM,
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        # then it exits with status 0 within 10 seconds, having logged its stop.
        assert code == 0
        assert time.monotonic() - stopped_at < 10
        output = (config.parent / "service.log").read_text(encoding="utf-8")
        assert 'msg="service stopped"' in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_service_killed_mid_case_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # Given sixty cases whose clocks started two months ago, so every step is overdue now (a
    # catch-up of over a thousand emails, so that the kill lands part-way through it),
    port = free_port()
    config_path = service_config(tmp_path, port)
    config = load_config(config_path)
    database = open_database(config)
    now = datetime.now(UTC)
    with transaction(database) as session:
        for number in range(CAUGHT_UP_CASES):
            open_case(session, config, now - timedelta(days=60, hours=number), now, "test")
    database.dispose()
    # when the service catching up on them is killed with SIGKILL part-way, and restarted,
    process = start(config_path)
    sent_folder = tmp_path / "var" / "mail" / "sent"
    deadline = time.monotonic() + 60
    # The sends are watched closely, so that the kill lands soon after the first ones.
    while _sent(sent_folder) < 5 and time.monotonic() < deadline:
        time.sleep(0.002)  # real-time ok: polling a real process until a bounded deadline
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    sent_before_restart = _sent(sent_folder)
    process = start(config_path)
    try:
        database = open_database(config)
        wait_until(lambda: _all_sent(database), 90, "every outbox row to be sent")
        # It is stopped once it is up (before that, SIGTERM finds no handler to stop it well).
        wait_until(lambda: health(port)[0] == 200, 30, "/healthz to answer 200")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # then every queued message is in Sent exactly once.
    with transaction(database) as session:
        expected = {row.message_id for row in session.exec(
            select(OutboxMessage).where(OutboxMessage.channel == "mail"))}
    counts = Counter(
        str(message["Message-ID"]) for message in mailbox.Maildir(str(sent_folder), create=False)
    )
    assert sent_before_restart < len(expected), "the kill landed after the last send"
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    # Nothing due was lost either: every action due before the start ran, every milestone
    # due then is overdue (none left pending), and each was warned of exactly once.
    with transaction(database) as session:
        pending = session.exec(select(PlannedAction).where(
            PlannedAction.status == "pending", col(PlannedAction.due_at) <= now)).all()
        milestones = session.exec(select(Milestone).where(
            col(Milestone.due_at) <= now)).all()
        warnings = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "milestone_overdue")).all()
    database.dispose()
    assert pending == []
    assert {milestone.status for milestone in milestones} <= {"overdue", "not_applicable"}
    overdue = [milestone for milestone in milestones if milestone.status == "overdue"]
    assert len(overdue) >= CAUGHT_UP_CASES * 5
    assert len(warnings) == len(overdue) == len({row.idempotency_key for row in warnings})


@pytest.mark.slow
def test_rrbot_run_with_the_health_port_in_use_stops_before_sending(tmp_path: Path) -> None:
    # Given a case whose every step is overdue, so a start-up would send mail at once,
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config_path = service_config(tmp_path, port)
        config = load_config(config_path)
        database = open_database(config)
        now = datetime.now(UTC)
        with transaction(database) as session:
            open_case(session, config, now - timedelta(days=60), now, "test")
        # when the service starts while something else listens on its health port,
        completed = subprocess.run([RRBOT, "run", "--config", str(config_path)],
                                   capture_output=True, text=True, check=False,
                                   cwd=tmp_path, timeout=60)
    # then it exits 2 with one line naming the address and the key to change,
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [
        f"127.0.0.1:{port} is in use; set [service] health_port to a free port"
        " (0 turns the endpoints off)"
    ]
    # and nothing was sent or done: no mail in Sent, the ballot's chat post still waiting,
    # and no overdue step run (each would have queued and sent its reminder or warning).
    assert _sent(tmp_path / "var" / "mail" / "sent") == 0
    with transaction(database) as session:
        outbox = {row.status for row in session.exec(select(OutboxMessage))}
        actions = {row.status for row in session.exec(select(PlannedAction))}
    database.dispose()
    assert outbox == {"pending"}
    assert actions == {"pending"}


@pytest.mark.slow
def test_rrbot_run_with_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    # Given a config whose PostgreSQL server is not listening,
    config = service_config(tmp_path, free_port())
    text = config.read_text(encoding="utf-8")
    database_port = free_port()
    config.write_text(text.replace(
        'url = "sqlite:///var/rrbot.sqlite3"',
        f'url = "postgresql+psycopg://rrbot:hunter2@127.0.0.1:{database_port}/rrbot"'),
        encoding="utf-8")
    # when the service starts,
    completed = subprocess.run([RRBOT, "run", "--config", str(config)], capture_output=True,
                               text=True, check=False, cwd=tmp_path, timeout=60)
    # then it exits 2 with one line naming the database without its password.
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(
        f"database postgresql+psycopg://rrbot:***@127.0.0.1:{database_port}/rrbot: ")
    assert "Connection refused" in lines[0]
    assert "hunter2" not in completed.stderr


def _sent(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(len(os.listdir(folder / sub)) for sub in ("new", "cur") if (folder / sub).exists())


def _all_sent(database: Any) -> bool:
    with transaction(database) as session:
        rows = session.exec(select(OutboxMessage)).all()
    return bool(rows) and all(row.status == "sent" for row in rows)


@pytest.mark.slow
def test_healthz_reports_a_failing_mailbox_when_the_imap_server_stops(
    tmp_path: Path, mail_servers: Any
) -> None:
    # Given the service reading an IMAP mailbox on the test Dovecot,
    address = mail_servers.new_user("health", password="secret-health")
    port = free_port()
    imap = {"host": mail_servers.host, "port": mail_servers.imaps_port, "security": "ssl",
            "username": address, "password_env": "TEST_IMAP_PASSWORD",
            "ca_file": str(mail_servers.ca_file)}
    smtp = {"host": mail_servers.host, "port": mail_servers.smtp_port, "security": "starttls",
            "username": address, "password_env": "TEST_IMAP_PASSWORD"}
    # The mailbox counts as down after six seconds unread.
    config = write_config(tmp_path, database_url=EMBEDDED_DATABASE, service={
        "health_port": port, "mailbox_stale_minutes": 0.1,
    }, mailbox={"backend": "imap", "address": address, "imap": exactly(imap),
                "smtp": exactly(smtp)})
    process = subprocess.Popen([RRBOT, "run", "--config", str(config)], cwd=tmp_path,
                               env={**os.environ, "TEST_IMAP_PASSWORD": "secret-health"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: health(port)[0] == 200, 30, "a healthy service")
        # when the IMAP server stops,
        mail_servers.stop_imap()
        try:
            wait_until(lambda: health(port)[0] == 503, 30, "/healthz to report the failure")
            status, body = health(port)
            # then /healthz answers 503 naming the mailbox, while the database is still fine.
            assert body["failing"] == ["mailbox"]
            assert body["checks"]["mailbox"]["ok"] is False
            assert body["checks"]["mailbox"]["error"]
            assert body["checks"]["database"]["ok"] is True
        finally:
            mail_servers.start_imap()
        # And it recovers on its own once the server is back.
        wait_until(lambda: health(port)[0] == 200, 60, "/healthz to recover")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.slow
def test_rrbot_run_acknowledges_a_referral_over_imap_and_stops_on_sigterm(
    tmp_path: Path, mail_servers: Any
) -> None:
    # Given the service on the test Dovecot and SMTP servers, every person a mailbox there,
    people = make_people(mail_servers)
    port = free_port()
    config = write_imap_config(tmp_path, mail_servers, people, port)
    process = subprocess.Popen([RRBOT, "run", "--config", str(config)], cwd=tmp_path,
                               env={**os.environ, "TEST_RUN_PW": "secret-run"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: health(port)[0] == 200, 30, "a healthy service")
        # when the GP's safeguarding lead sends a referral,
        delivered = time.monotonic()
        mail_servers.deliver(people["bot"], referral(people), sender=people["referrer"])
        # then the acknowledgement lands in the referrer's mailbox within seconds,
        wait_until(lambda: len(mail_servers.messages(people["referrer"])) == 1, 30,
                   "the acknowledgement")
        latency = time.monotonic() - delivered
        ack = message_from_bytes(mail_servers.messages(people["referrer"])[0],
                                 policy=policy.default)
        assert str(ack["Subject"]).startswith("[RR-2026-001] Referral received")
        assert ack["Auto-Submitted"] == "auto-replied"
        assert latency < 10, latency
        # and on SIGTERM the service exits cleanly within 10 seconds.
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - stopped < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
