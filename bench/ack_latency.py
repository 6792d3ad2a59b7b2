"""Time from the SMTP server's 250 for a referral to the acknowledgement in the referrer's inbox.

Runs `rrbot run` on the real Dovecot and SMTP test servers, once with IMAP IDLE and once with
polling, sending one referral at a time. Usage: .venv/bin/python bench/ack_latency.py [--trials N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import free_port  # noqa: E402
from tests.servers.fixtures import MailServers  # noqa: E402
from tests.service.run_config import (  # noqa: E402
    PASSWORD,
    make_people,
    referral,
    write_imap_config,
)

RRBOT = str(Path(sys.executable).with_name("rrbot"))


def measure(servers: MailServers, trials: int, use_idle: bool) -> list[float]:
    people = make_people(servers)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="rrbot-bench-"))
    config = write_imap_config(folder, servers, people, port, use_idle=use_idle)
    process = subprocess.Popen([RRBOT, "run", "--config", str(config)], cwd=folder,
                               env={**os.environ, "TEST_RUN_PW": PASSWORD},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latencies = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").status == 200:
                    break
            except OSError:
                time.sleep(0.1)  # real-time ok: a benchmark of real latency
        for number in range(trials):
            expected = number + 1
            servers.deliver(people["bot"], referral(people, number), sender=people["referrer"])
            accepted = time.monotonic()
            while len(servers.messages(people["referrer"])) < expected:
                if time.monotonic() - accepted > 60:
                    raise RuntimeError(f"no acknowledgement for referral {number} in 60 s")
                time.sleep(0.01)  # real-time ok: a benchmark of real latency
            latencies.append(time.monotonic() - accepted)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=100)
    arguments = parser.parse_args()
    servers = MailServers()
    servers.start()
    try:
        print(f"{'mode':<8} {'trials':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
        for mode, use_idle in (("IDLE", True), ("polling", False)):
            latencies = sorted(measure(servers, arguments.trials, use_idle))
            p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
            print(f"{mode:<8} {len(latencies):>6} {statistics.median(latencies):>7.2f}"
                  f" {p95:>7.2f} {latencies[-1]:>7.2f}")
    finally:
        servers.close()


if __name__ == "__main__":
    main()
