"""Serving the cockpit with uvicorn on a thread of the service's process."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import uvicorn
from sqlalchemy import Engine

from bot.commands.base import Context
from bot.commands.people import OPERATOR
from bot.commands.signin import SendSignInLink, signin_link_for
from bot.config import Config
from bot.service.health import HealthServerError
from bot.store.db import transaction
from bot.web.app import build_app
from bot.web.core import Cockpit


class CockpitError(HealthServerError):
    """The cockpit cannot listen where the config says (the port is taken, say)."""


class CockpitServer:
    """The cockpit listening on its address until stopped."""

    def __init__(self, config: Config, database: Engine, clock: Callable[[], datetime],
                 on_change: Callable[[], None] = lambda: None, port: int | None = None
                 ) -> None:
        web = config.settings.web
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((web.host, web.port if port is None else port))
        except OSError as exc:
            self.listener.close()
            raise CockpitError(f"the cockpit cannot listen on {web.host}:{web.port}"
                               f" ({exc.strerror}); set [web] port to a free port") from None
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://{web.host}:{self.port}"
        app = build_app(Cockpit(config, database, clock, on_change))
        # Behind the council's reverse proxy, which ends TLS and says who asked.
        self.server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", proxy_headers=True, forwarded_allow_ips="127.0.0.1",
            access_log=False))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.listener]},
                                       name="cockpit", daemon=True)

    def start(self) -> CockpitServer:
        """Start serving on a thread of its own."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Finish the requests in flight and stop."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.close()


def start_cockpit(config: Config, database: Engine, clock: Callable[[], datetime],
                  on_change: Callable[[], None]) -> CockpitServer | None:
    """Serve the cockpit where [web] says, or nothing when its port is 0."""
    if not config.settings.web.port:
        return None
    return CockpitServer(config, database, clock, on_change).start()


def serve_demo(config: Config, database: Engine, demo_end: datetime, port: int,
               show: Callable[[str], None]) -> None:
    """Serve the cockpit on the demo's database until Ctrl-C, with a sign-in link for her.

    The clock goes on from the demo's last simulated instant, so the case reads as it ended.
    """
    started = time.monotonic()

    def clock() -> datetime:
        return demo_end + timedelta(seconds=time.monotonic() - started)

    server = CockpitServer(config, database, clock, port=port).start()
    manager = config.settings.business_manager.email
    with transaction(database) as session:
        link = signin_link_for(Context(session, config, OPERATOR, clock()),
                               SendSignInLink(manager, server.url))
    show(f"The cockpit is at {server.url}/ (Ctrl-C to stop).")
    show(f"Sign in as the business manager ({manager}) with this one-time link, within"
         f" 15 minutes:\n  {link}")
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _number, _frame: stop.set())
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        server.stop()
