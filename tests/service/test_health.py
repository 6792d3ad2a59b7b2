"""Health that reflects the engine: a dead or stalled engine is 503, logged, and exits non-zero."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from bot.cases.lifecycle import open_case
from bot.config import load_config
from bot.service.run import Service
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import PlannedAction
from tests.servers import free_port
from tests.service.test_service import RRBOT, health, service_config, start, wait_until


def watch_until_exit(process: subprocess.Popen[bytes], port: int) -> tuple[list[int], int]:
    """Poll /healthz until the process exits; return the statuses seen and the exit code."""
    seen: list[int] = []

    def exited() -> bool:
        try:
            seen.append(health(port)[0])
        except OSError:
            pass
        return process.poll() is not None

    wait_until(exited, 30, "the service to exit")
    return seen, process.wait()


def output_of(process: subprocess.Popen[bytes]) -> str:
    """Return what a service started by start() wrote (service.log beside its config)."""
    config = Path(str(process.args[-1])) if isinstance(process.args, list) else None
    if config is not None and (config.parent / "service.log").exists():
        return (config.parent / "service.log").read_text(encoding="utf-8")
    return process.stdout.read().decode() if process.stdout else ""


@pytest.mark.slow
def test_a_broken_maildir_stops_the_engine_with_a_503_a_log_line_and_status_1(
    tmp_path: Path,
) -> None:
    # Given the service healthy on the embedded default (sweeps every second),
    port = free_port()
    process = start(service_config(tmp_path, port))
    try:
        wait_until(lambda: health(port)[0] == 200, 30, "/healthz to answer 200")
        # when the Maildir inbox's new/ folder is replaced by a file,
        new = tmp_path / "var" / "mail" / "inbox" / "new"
        shutil.rmtree(new)
        new.write_text("not a folder\n", encoding="utf-8")
        # then /healthz answers 503 naming the engine before the process exits with status 1,
        failing = []

        def engine_failing() -> bool:
            status, body = health(port)
            if status == 503:
                failing.append(body)
            return status == 503

        wait_until(engine_failing, 3, "/healthz to answer 503 within three sweeps")
        seen, code = watch_until_exit(process, port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 1
    assert failing[0]["failing"] == ["engine"]
    assert "NotADirectoryError" in failing[0]["checks"]["engine"]["error"]
    # and the reason is one structured line, not a traceback.
    output = output_of(process)
    [line] = [line for line in output.splitlines() if 'msg="engine stopped"' in line]
    assert line.startswith("time=") and "level=error" in line and "exit_status=1" in line
    assert 'error="NotADirectoryError:' in line
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_planned_action_that_always_fails_stalls_the_engine_and_stops_it(
    tmp_path: Path,
) -> None:
    # Given a planned action due now whose code raises (no such action is registered),
    port = free_port()
    config_path = service_config(tmp_path, port)
    database = open_database(load_config(config_path))
    with transaction(database) as session:
        session.add(PlannedAction(partnership="exampleshire", key="broken", action="no_such",
                                  arguments="{}", due_at=datetime.now(UTC)))
    database.dispose()
    # when the service runs, every step failing on it,
    started = datetime.now(UTC)
    process = start(config_path)
    try:
        seen, code = watch_until_exit(process, port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # then /healthz answered 503 once no step had completed for three sweeps, and the
    # process exited with status 1 after a structured line naming the stall.
    assert 503 in seen
    assert code == 1
    assert datetime.now(UTC) - started < timedelta(seconds=20)
    [line] = [line for line in output_of(process).splitlines() if "engine stopped" in line]
    assert "level=error" in line and "EngineStalled" in line and "no_such" in line


@pytest.mark.slow
def test_systemd_hears_ready_the_watchdog_and_stopping(tmp_path: Path) -> None:
    # Given a notification socket as systemd provides, and a watchdog of two seconds,
    port = free_port()
    config = service_config(tmp_path, port)
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(address))
        listener.settimeout(20)
        environment = {"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "2000000"}
        process = subprocess.Popen([RRBOT, "run", "--config", str(config)], cwd=tmp_path,
                                   env={**_environment(), **environment},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # when the service starts, runs a few seconds and is stopped,
            heard = [listener.recv(4096).decode() for _ in range(3)]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            heard += [listener.recv(4096).decode()]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # then systemd heard it was ready, then the watchdog kept alive, then that it stopped.
    assert heard[0] == "READY=1"
    assert heard[1:3] == ["WATCHDOG=1", "WATCHDOG=1"]
    assert heard[3] == "STOPPING=1"


def _environment() -> dict[str, str]:
    return dict(os.environ)


NOW = datetime(2027, 1, 13, 11, 0, tzinfo=UTC)


def scrape_after_one_step(tmp_path: Path) -> dict[str, Metric]:
    """Open a case whose clock started twenty days ago, step once, parse what /metrics says."""
    config = load_config(service_config(tmp_path, 0))
    service = Service(config, clock=lambda: NOW)
    with transaction(service.engine.database) as session:
        open_case(session, config, NOW - timedelta(days=20), NOW, "test")
    try:
        assert service.step()
        text = service.metrics.render().decode()
    finally:
        service.engine.database.dispose()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_show_every_series_a_dashboard_and_the_alerts_read(tmp_path: Path) -> None:
    # Given a case whose clock started twenty days ago, so some steps are overdue,
    # when the engine steps once and /metrics is rendered,
    families = scrape_after_one_step(tmp_path)
    now = NOW
    # then prometheus_client's parser reads every series, at zero where nothing counts.
    def value(name: str, **labels: str) -> float:
        return next(sample.value for family in families.values() for sample in family.samples
                    if sample.name == name and sample.labels == labels)

    assert families["rrbot_step_duration_seconds"].type == "histogram"
    assert value("rrbot_step_duration_seconds_count") == 1
    assert value("rrbot_last_step_timestamp_seconds") == now.timestamp()
    assert value("rrbot_mailbox_last_successful_read_timestamp_seconds") == now.timestamp()
    assert value("rrbot_outbox_messages", status="dead") == 0
    assert value("rrbot_outbox_messages", status="sent") > 0
    assert value("rrbot_inbound_messages", outcome="quarantined") == 0
    assert value("rrbot_quarantined_messages") == 0
    assert value("rrbot_open_cases", status="awaiting_decision") == 1
    assert value("rrbot_ballots_awaiting_votes", kind="decision") == 1
    assert value("rrbot_ballots_awaiting_votes", kind="signoff") == 0
    assert value("rrbot_milestones_overdue", milestone="partner_decision", statutory="true") == 1
    assert value("rrbot_milestones_at_risk", milestone="submit_national_panel",
                 statutory="true") == 0
    assert value("rrbot_submissions_at_risk") == 0
    assert value("rrbot_steps_total", result="ok") == 1
    assert value("rrbot_engine_up") == 0  # the engine thread was not started
    assert value("rrbot_database_up") == 1
    assert "process_resident_memory_bytes" in families
