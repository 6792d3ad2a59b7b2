"""The long-running service: APScheduler triggers the engine; the database holds all state."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Config
from bot.engine.step import Engine
from bot.kernel import audit
from bot.kernel.mailbox import MailboxError
from bot.process.working_days import LONDON
from bot.service.health import HealthState, serve
from bot.service.metrics import ServiceMetrics
from bot.service.systemd import notify, watchdog_seconds
from bot.service.wiring import build_engine, record_config_load
from bot.store.db import transaction
from bot.web.server import CockpitServer, start_cockpit

log = logging.getLogger(__name__)

# The longest the mail watcher blocks, so that a stop request is noticed within seconds.
WATCH_SLICE_SECONDS = 2.0
# How long a process whose engine stopped keeps answering 503 before it exits (at most).
FAILING_LINGER_SECONDS = 5.0


class EngineStalled(Exception):
    """No step has completed for three sweeps: every one failed."""


class Service:
    """Runs the engine until told to stop: a sweep every minute, mail as it arrives.

    APScheduler holds only periodic triggers (the sweep and the 08:30 wake-up); every due
    action lives in the database, so a restart repeats and loses nothing.
    """

    def __init__(
        self, config: Config, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config = config
        self.clock = clock
        self.engine: Engine = build_engine(config)
        service = config.settings.service
        self.health = HealthState(sweep_seconds=service.sweep_seconds,
                                  mailbox_stale_minutes=service.mailbox_stale_minutes,
                                  clock=clock, started_at=clock(),
                                  chat_backend=config.settings.chat.backend)
        self.metrics = ServiceMetrics(config, self.engine.database, self.health)
        # The process's exit status: 1 once the engine has stopped on an error.
        self.exit_status = 0
        # systemd's watchdog interval when it runs the service with WatchdogSec, else None.
        self.watchdog = watchdog_seconds()
        self.watchdog_told = 0.0
        self.stopping = threading.Event()
        # The scheduler's triggers only wake the engine thread, which alone steps the engine
        # and so alone uses the mailbox connection (IMAP clients are not thread-safe).
        self.wake = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=LONDON,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.engine_thread = threading.Thread(target=self._run_engine, name="engine",
                                              daemon=True)
        self.health_server: ThreadingHTTPServer | None = None
        self.cockpit: CockpitServer | None = None

    def start(self) -> None:
        """Verify the audit trail, catch up on everything due, then start the triggers.

        The health endpoints are bound first: a port already in use raises HealthServerError
        before anything is recorded or sent, so a failed start-up sends nothing.
        """
        service = self.config.settings.service
        if service.health_port:
            self.health_server = serve(service.health_host, service.health_port, self.health,
                                       self.engine.database, self.metrics.render)
        self.cockpit = start_cockpit(self.config, self.engine.database, self.clock, self.wake.set)
        now = self.clock()
        record_config_load(self.engine, now)
        with transaction(self.engine.database) as session:
            # Only the entries since the last check are read: start-up does not grow with the
            # trail; `rrbot audit verify` recomputes the whole of it.
            broken = [check for check in audit.verify_since_checkpoint(session)
                      if not check.ok]
        for check in broken:
            log.error("audit trail broken", extra={"partnership": check.partnership,
                                                   "first_broken_entry": check.first_broken_id})
        # Everything that fell due while the service was down runs now, once.
        self.step()
        self.scheduler.add_job(self.wake.set, IntervalTrigger(seconds=service.sweep_seconds),
                               id="sweep")
        # A wake-up at each whole hour and half hour keeps daily jobs (the 08:30 digest) on time
        # even when the sweep interval is long.
        self.scheduler.add_job(self.wake.set, CronTrigger(minute="0,30"), id="half-hourly")
        self.scheduler.start()
        self.health.scheduler_running = True
        self.health.engine_running = True
        self.engine_thread.start()
        notify("READY=1")
        if self.config.settings.chat.backend == "slack":
            self._listen_to_slack()
        log.info("service started", extra={"partnership": self.config.settings.partnership.key,
                                           "mailbox": self.config.settings.mailbox.backend,
                                           "chat": self.config.settings.chat.backend})

    def _listen_to_slack(self) -> None:
        # Votes and commands arrive on Slack's own threads; each change only wakes the engine
        # thread, which sends the resulting messages on its next step.
        from bot.service.chat import listen_for_chat

        def listen() -> None:
            try:
                listen_for_chat(self.config, self.engine.database, os.environ,
                                on_change=self.wake.set)
            except Exception as exc:
                self.health.chat_error = f"{type(exc).__name__}: {exc}"
                log.exception("the Slack listener stopped")

        threading.Thread(target=listen, name="slack", daemon=True).start()

    def step(self) -> bool:
        """Run one engine step now and say whether it completed; errors are logged, not raised.

        A completed step is the heartbeat: /healthz and the watchdog go by it.
        """
        began = time.monotonic()
        now = self.clock()
        try:
            report = self.engine.step(now)
        except MailboxError as exc:
            # The engine ran; only the mailbox failed it, and mailbox_stale_minutes judges that.
            self.health.poll_failed(str(exc))
            self.health.step_finished(self.clock(), None)
            self.metrics.step_done(time.monotonic() - began, 0, ok=True)
            log.warning("mailbox unavailable", extra={"error": str(exc)})
            return True
        except Exception as exc:
            self.health.step_finished(self.clock(), f"{type(exc).__name__}: {exc}")
            self.metrics.step_done(time.monotonic() - began, 0, ok=False)
            log.exception("step failed")
            return False
        if report.mailbox_error is not None:
            self.health.poll_failed(report.mailbox_error)
        else:
            self.health.poll_succeeded(now)
        self.health.step_finished(self.clock(), None)
        self.metrics.step_done(time.monotonic() - began, len(report.dispatch.sent), ok=True)
        if not report.idle:
            log.info("step", extra={"fetched": report.fetched,
                                    "handled": len(report.handled),
                                    "actions": len(report.actions),
                                    "sent": len(report.dispatch.sent),
                                    "retried": len(report.dispatch.retried),
                                    "dead": len(report.dispatch.dead)})
        return True

    def _run_engine(self) -> None:
        # Whatever ends the loop other than a stop request ends the process with status 1,
        # so that systemd (Restart=on-failure) or the container runtime starts it again.
        try:
            self._engine_loop()
        except BaseException as exc:  # noqa: BLE001 - the thread's last word, then the exit.
            error = f"{type(exc).__name__}: {exc}"
            self.health.engine_stopped(error)
            log.error("engine stopped", extra={"error": error, "exit_status": 1})
            self.exit_status = 1
            self.stopping.set()

    def _engine_loop(self) -> None:
        # Step when woken, and otherwise wait on the mailbox in short slices (IMAP IDLE where
        # the server offers it), stepping as soon as mail arrives.
        while not self.stopping.is_set():
            if self.wake.is_set():
                self.wake.clear()
                self.step()
            try:
                arrived = self.engine.mailbox.wait_for_mail(WATCH_SLICE_SECONDS)
            except MailboxError as exc:
                self.health.poll_failed(str(exc))
                self.stopping.wait(WATCH_SLICE_SECONDS)
                arrived = False
            # Mail, or a mailbox answering again after a failure, is worth a step at once.
            if arrived or self.health.last_poll_error is not None:
                self.step()
            self._check_heartbeat()

    def _check_heartbeat(self) -> None:
        """Give up when steps have failed for three sweeps; otherwise tell the watchdog."""
        check = self.health.engine_check(self.clock())
        if not check["ok"] and self.health.last_step_error is not None:
            raise EngineStalled(check["error"])
        if check["ok"] and self.watchdog is not None:
            now = time.monotonic()
            # systemd is told at twice the rate its watchdog needs.
            if now - self.watchdog_told >= self.watchdog / 2:
                notify("WATCHDOG=1")
                self.watchdog_told = now

    def stop(self) -> None:
        """Stop taking work, let the step in flight finish, release connections."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        notify("STOPPING=1")
        log.info("service stopping")
        self.scheduler.shutdown(wait=True)
        self.health.scheduler_running = False
        # The engine thread finishes the step in flight, then sees the stop within one slice.
        self.engine_thread.join(timeout=WATCH_SLICE_SECONDS * 3)
        self.engine.mailbox.close()
        self.engine.database.dispose()
        if self.health_server is not None:
            self.health_server.shutdown()
        if self.cockpit is not None:
            self.cockpit.stop()
        log.info("service stopped")

    def run_until_signalled(self) -> int:
        """Start, wait for SIGTERM or SIGINT or the engine's end, stop; return the exit status.

        An engine that stopped on an error is reported (503 from /healthz) for a few seconds
        before the process exits with status 1, so a probe sees why it is going.
        """
        def on_signal(number: int, _frame: FrameType | None) -> None:
            log.info("signal received", extra={"signal": signal.Signals(number).name})
            self.stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        self.stopping.wait()
        if self.exit_status:
            time.sleep(min(self.config.settings.service.sweep_seconds, FAILING_LINGER_SECONDS))
        self.stopping.clear()
        self.stop()
        return self.exit_status
