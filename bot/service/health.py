"""The service's health (/healthz, JSON) and metrics (/metrics, Prometheus text) on localhost."""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import text
from sqlmodel import col, func, select

from bot.store.db import transaction
from bot.store.models import OutboxMessage
from bot.store.statuses import OutboxStatus


class HealthServerError(Exception):
    """The health endpoints cannot listen where the config says; the message is one line."""


@dataclass
class HealthState:
    """What the service last saw of each part; written by its threads, read by the endpoint.

    Every completed step writes the heartbeat (last_step_at). /healthz fails the engine when
    the heartbeat is older than three sweeps or the engine thread has stopped, and the mailbox
    when it has not been read for [service] mailbox_stale_minutes.
    """

    sweep_seconds: float = 60.0
    mailbox_stale_minutes: float = 15.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_poll_ok_at: datetime | None = None
    last_poll_error: str | None = None
    last_step_at: datetime | None = None
    last_step_error: str | None = None
    engine_running: bool = False
    engine_error: str | None = None
    scheduler_running: bool = False
    chat_backend: str = "console"
    chat_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def poll_succeeded(self, at: datetime) -> None:
        """Record a successful look at the mailbox."""
        with self.lock:
            self.last_poll_ok_at, self.last_poll_error = at, None

    def poll_failed(self, error: str) -> None:
        """Record a failed look at the mailbox."""
        with self.lock:
            self.last_poll_error = error

    def step_finished(self, at: datetime, error: str | None) -> None:
        """Record the end of one engine step: a completed one is the heartbeat."""
        with self.lock:
            if error is None:
                self.last_step_at, self.last_step_error = at, None
            else:
                self.last_step_error = error

    def engine_stopped(self, error: str) -> None:
        """Record that the engine thread has stopped for good, and why."""
        with self.lock:
            self.engine_running, self.engine_error = False, error

    def engine_check(self, now: datetime) -> dict[str, Any]:
        """Say whether the engine is alive and its last completed step recent enough."""
        with self.lock:
            heartbeat = self.last_step_at or self.started_at
            age = (now - heartbeat).total_seconds()
            problem = self.engine_error
            if problem is None and not self.engine_running:
                problem = "the engine thread is not running"
            if problem is None and age > 3 * self.sweep_seconds:
                problem = (f"no step has completed for {age:.0f} s (three sweeps are"
                           f" {3 * self.sweep_seconds:.0f} s); last error: {self.last_step_error}")
            return {"ok": problem is None, "last_step": _iso(self.last_step_at),
                    "error": problem}

    def mailbox_check(self, now: datetime) -> dict[str, Any]:
        """Say whether the mailbox has been read within [service] mailbox_stale_minutes."""
        with self.lock:
            last_read = self.last_poll_ok_at or self.started_at
            stale = (now - last_read).total_seconds() > self.mailbox_stale_minutes * 60
            error = self.last_poll_error
            if stale and error is None:
                error = "the mailbox has not been read yet"
            return {"ok": not stale, "last_successful_poll": _iso(self.last_poll_ok_at),
                    "error": error}


def report(state: HealthState, database: DatabaseEngine) -> tuple[bool, dict[str, Any]]:
    """Check each part and say whether the whole service is healthy."""
    checks: dict[str, Any] = {}
    try:
        with transaction(database) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            oldest = session.exec(
                select(func.min(OutboxMessage.created_at))
                .where(col(OutboxMessage.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
            ).one()
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any database failure is reported, not raised.
        checks["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
        oldest = None
    now = state.clock()
    checks["engine"] = state.engine_check(now)
    checks["mailbox"] = state.mailbox_check(now)
    with state.lock:
        checks["chat"] = {"ok": state.chat_error is None, "backend": state.chat_backend,
                          "error": state.chat_error}
        checks["scheduler"] = {"ok": state.scheduler_running}
    checks["outbox"] = {"ok": True, "oldest_unsent": _iso(_aware(oldest))}
    failing = [name for name, part in checks.items() if not part["ok"]]
    body = {"status": "failing" if failing else "ok", "failing": failing, "checks": checks}
    return not failing, body


def serve(
    host: str, port: int, state: HealthState, database: DatabaseEngine,
    metrics: Callable[[], bytes],
) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread and return the server (shut it down to stop).

    Raises HealthServerError, naming the address and the config key to change, when the
    address cannot be listened on (the port is taken, or the host is not this machine's).
    """

    class Endpoints(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls.
            routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
                "/healthz": self._health, "/metrics": self._metrics,
            }
            route = routes.get(self.path.split("?")[0])
            status, kind, body = route() if route else (404, "text/plain", b"not found\n")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _health(self) -> tuple[int, str, bytes]:
            healthy, body = report(state, database)
            return (200 if healthy else 503, "application/json",
                    json.dumps(body, indent=2).encode())

        def _metrics(self) -> tuple[int, str, bytes]:
            return 200, CONTENT_TYPE_LATEST, metrics()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - inherited name.
            return None

    try:
        server = ThreadingHTTPServer((host, port), Endpoints)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise HealthServerError(f"{host}:{port} is in use; set [service] health_port"
                                    " to a free port (0 turns the endpoints off)") from None
        reason = exc.strerror or str(exc)
        raise HealthServerError(f"{host}:{port}: cannot listen ({reason}); set [service]"
                                " health_host and health_port") from None
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat(timespec="seconds") if instant else None


def _aware(instant: datetime | None) -> datetime | None:
    if instant is not None and instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant
