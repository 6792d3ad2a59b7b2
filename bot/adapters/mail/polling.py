"""Waiting for new mail by looking again at a steady interval until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(
    arrived: Callable[[], bool],
    timeout: float,
    every: float,
    sleep: Callable[[float], None] | None = None,
    *,
    look_first: bool = True,
) -> bool:
    """Ask arrived() after each pause of every seconds; say True once it does, False at timeout.

    With look_first it is also asked before the first pause. Time is counted by the clock and
    by the pauses taken, so a stand-in sleep that returns at once still ends the wait after
    timeout seconds' worth of pauses.
    """
    pause_for = sleep or time.sleep
    deadline = time.monotonic() + timeout
    if look_first and arrived():
        return True
    waited = 0.0
    while True:
        remaining = min(timeout - waited, deadline - time.monotonic())
        if remaining <= 0:
            return False
        pause = min(every, remaining)
        pause_for(pause)
        waited += pause
        if arrived():
            return True
