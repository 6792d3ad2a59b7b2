"""Real PostgreSQL, Dovecot and SMTP servers that the tests start on 127.0.0.1 and stop again."""

from __future__ import annotations

import socket
import time
from pathlib import Path

# Every test server listens on the loopback address only.
LOOPBACK = "127.0.0.1"

# setpriv makes a server die with the test process even if pytest itself is killed.
SETPRIV = Path("/usr/bin/setpriv")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing was listening on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float, is_alive: object = None) -> None:
    """Wait until something accepts connections on 127.0.0.1:port, or raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {LOOPBACK}:{port} after {timeout} s"
                ) from error
            # A server process that has already exited will never start listening.
            if callable(is_alive) and not is_alive():
                raise RuntimeError(f"the server meant for {LOOPBACK}:{port} exited") from error
            time.sleep(0.02)  # real-time ok: waiting for a real process, bounded
