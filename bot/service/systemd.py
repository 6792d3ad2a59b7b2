"""Telling systemd how the service is doing (sd_notify): ready, alive, stopping.

The protocol is a datagram of KEY=VALUE lines to the Unix socket named in NOTIFY_SOCKET
(a leading "@" means Linux's abstract namespace); outside systemd the variable is unset and
nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification (e.g. "READY=1"); say whether systemd was there to hear it."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as channel:
            channel.sendto(message.encode("utf-8"), target)
    except OSError as exc:
        log.warning("systemd notification failed: %s", exc)
        return False
    return True


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """Return systemd's watchdog interval (WatchdogSec) for this process, or None if unset."""
    values = os.environ if environ is None else environ
    usec = values.get("WATCHDOG_USEC")
    pid = values.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None
