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

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import text
from sqlmodel import col, func, select

from bot.store.db import transaction
from bot.store.models import Case, InboundMessage, OutboxMessage
from bot.store.statuses import CaseStatus, InboundStatus, OutboxStatus


class HealthServerError(Exception):
    """The health endpoints cannot listen where the config says; the message is one line."""


@dataclass
class HealthState:
    """What the service last saw of each part; written by its threads, read by the endpoint."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_poll_ok_at: datetime | None = None
    last_poll_error: str | None = None
    last_step_ok_at: datetime | None = None
    last_step_error: str | None = None
    scheduler_running: bool = False
    chat_backend: str = "console"
    chat_error: str | None = None
    steps: int = 0
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def poll_succeeded(self, at: datetime) -> None:
        """Record a successful look at the mailbox."""
        with self.lock:
            self.last_poll_ok_at, self.last_poll_error = at, None

    def poll_failed(self, error: str) -> None:
        """Record a failed look at the mailbox."""
        with self.lock:
            self.last_poll_error = error

    def step_finished(self, at: datetime, sent: int, error: str | None) -> None:
        """Record the end of one engine step."""
        with self.lock:
            self.steps += 1
            self.sent += sent
            if error is None:
                self.last_step_ok_at, self.last_step_error = at, None
            else:
                self.last_step_error = error


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
    with state.lock:
        checks["mailbox"] = {
            "ok": state.last_poll_error is None and state.last_poll_ok_at is not None,
            "last_successful_poll": _iso(state.last_poll_ok_at),
            "error": state.last_poll_error,
        }
        checks["chat"] = {"ok": state.chat_error is None, "backend": state.chat_backend,
                          "error": state.chat_error}
        checks["scheduler"] = {"ok": state.scheduler_running,
                               "last_step": _iso(state.last_step_ok_at),
                               "error": state.last_step_error}
    checks["outbox"] = {"ok": True, "oldest_unsent": _iso(_aware(oldest))}
    healthy = all(part["ok"] for part in checks.values())
    return healthy, {"status": "ok" if healthy else "failing", "checks": checks}


def metrics(state: HealthState, database: DatabaseEngine) -> str:
    """Render counters and gauges in the Prometheus text format."""
    lines = []
    with transaction(database) as session:
        by_status = session.exec(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        open_cases = session.exec(
            select(func.count()).select_from(Case).where(Case.status != CaseStatus.CLOSED)
        ).one()
        quarantined = session.exec(
            select(func.count()).select_from(InboundMessage)
            .where(InboundMessage.status == InboundStatus.QUARANTINED)
        ).one()
    lines += ["# HELP rrbot_outbox_messages Outbox rows by status.",
              "# TYPE rrbot_outbox_messages gauge"]
    lines += [f'rrbot_outbox_messages{{status="{status}"}} {count}'
              for status, count in sorted(by_status)]
    lines += ["# HELP rrbot_open_cases Cases not yet closed.", "# TYPE rrbot_open_cases gauge",
              f"rrbot_open_cases {open_cases}",
              "# HELP rrbot_quarantined_messages Inbound mail waiting for triage.",
              "# TYPE rrbot_quarantined_messages gauge",
              f"rrbot_quarantined_messages {quarantined}"]
    with state.lock:
        lines += ["# HELP rrbot_steps_total Engine steps run.", "# TYPE rrbot_steps_total counter",
                  f"rrbot_steps_total {state.steps}",
                  "# HELP rrbot_sent_total Messages sent by this process.",
                  "# TYPE rrbot_sent_total counter", f"rrbot_sent_total {state.sent}",
                  "# HELP rrbot_mailbox_up Whether the last mailbox poll succeeded.",
                  "# TYPE rrbot_mailbox_up gauge",
                  f"rrbot_mailbox_up {0 if state.last_poll_error else 1}"]
    return "\n".join(lines) + "\n"


def serve(
    host: str, port: int, state: HealthState, database: DatabaseEngine
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
            return 200, "text/plain; version=0.0.4", metrics(state, database).encode()

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
