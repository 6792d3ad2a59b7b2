"""Time the cockpit's case board over 1,000 open cases and a case page with 20 agencies.

Each page is fetched 50 times in-process (Starlette's test client, so the time is the
server's: routing, session, queries, template), beside its floor measured in the same run:
the same page's command alone (its queries), and a static file. Goals: board under 200 ms,
case page under 100 ms (median).
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from bot.cases.lifecycle import find_case, open_case  # noqa: E402
from bot.cases.states import TRANSITIONS, transition  # noqa: E402
from bot.commands.base import Context  # noqa: E402
from bot.commands.board import case_board  # noqa: E402
from bot.commands.case_file import case_file  # noqa: E402
from bot.commands.people import OPERATOR, web_actor  # noqa: E402
from bot.commands.signin import SendSignInLink, signin_link_for  # noqa: E402
from bot.kernel.events import publish  # noqa: E402
from bot.process.working_days import parse_instant  # noqa: E402
from bot.service.wiring import open_database  # noqa: E402
from bot.store.db import transaction  # noqa: E402
from bot.web.app import build_app  # noqa: E402
from bot.web.core import Cockpit  # noqa: E402
from tests.factories import build_config  # noqa: E402

CASES = 1_000
AGENCIES = 20
RUNS = 50
START = parse_instant("2026-12-18T10:00")
NOW = parse_instant("2026-12-22T11:00")


def timed(fetch: Callable[[], Any]) -> tuple[float, float]:
    """Return the median and 95th percentile of RUNS calls, in milliseconds."""
    fetch()
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="rrbot-bench-cockpit-"))
    agencies = [{"key": f"agency_{n}", "name": f"Agency number {n}", "always_ask": True,
                 "contacts": [{"name": f"Contact {n}", "email": f"lead{n}@agency{n}.example"}]}
                for n in range(AGENCIES)]
    config = build_config(folder, closure_dates=[], agencies=agencies)
    database = open_database(config)
    began = time.perf_counter()
    with transaction(database) as session:
        for _number in range(CASES):
            open_case(session, config, START, START, actor="bench")
        case = find_case(session, "RR-2026-001")
        for status in ("awaiting_decision", "rapid_review"):
            if status in TRANSITIONS[case.status]:
                transition(session, case, status, "bench", NOW)
        publish("case_decided", session, config, case, NOW, decision="rapid_review")
    print(f"{CASES} open cases, one with {AGENCIES} agencies, made in"
          f" {time.perf_counter() - began:.0f} s")
    client = TestClient(build_app(Cockpit(config, database, lambda: NOW)),
                        base_url="https://testserver")
    with transaction(database) as session:
        link = signin_link_for(Context(session, config, OPERATOR, NOW), SendSignInLink(
            config.settings.business_manager.email, "https://testserver"))
    page = client.get(link.removeprefix("https://testserver"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    client.post(link.removeprefix("https://testserver"), data={"csrf_token": token.group(1)})
    manager = web_actor(config, config.settings.business_manager.email)
    assert manager is not None

    def query(command: Callable[[Context], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with transaction(database) as session:
                return command(Context(session, config, manager, NOW))
        return run

    def get(path: str) -> Callable[[], Any]:
        def fetch() -> None:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)
        return fetch

    static = timed(get("/static/cockpit.css"))
    rows = [
        ("case board, 1,000 open cases", get("/cases"), query(case_board), 200),
        (f"case page, {AGENCIES} agencies", get("/cases/RR-2026-001"),
         query(lambda context: case_file(context, "RR-2026-001")), 100),
    ]
    print(f"static file (floor): median {static[0]:.1f} ms, p95 {static[1]:.1f} ms")
    for name, page_fetch, queries, goal in rows:
        median, p95 = timed(page_fetch)
        floor, floor_p95 = timed(queries)
        verdict = "within" if median < goal else "OVER"
        print(f"{name}: median {median:.1f} ms, p95 {p95:.1f} ms ({verdict} the {goal} ms"
              f" goal); its queries alone {floor:.1f} ms (p95 {floor_p95:.1f}), ratio"
              f" {median / floor:.2f}; static ratio {median / static[0]:.0f}")
    database.dispose()


if __name__ == "__main__":
    main()
