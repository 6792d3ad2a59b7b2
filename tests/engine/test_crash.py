"""A stepping process killed with SIGKILL at random points still acts and sends exactly once."""

from __future__ import annotations

import multiprocessing
import random
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Config
from bot.process.working_days import parse_instant
from tests.engine.simulation import (
    outcome,
    prepare,
    read_progress,
    resume_child,
    sending_rows,
    timeline,
)

# Forked children start at once and inherit the imported bot; each makes its own engine.
FORK = multiprocessing.get_context("fork")
# Under pytest-xdist these campaigns of racing or killed processes run one at a time on one
# worker, as in a serial run, so no two of them race each other for the cores.
pytestmark = pytest.mark.xdist_group("processes")

# Referrals whose clocks start on different days and hours, so their deadlines interleave.
CLOCK_STARTS = [
    parse_instant("2026-12-18T10:00"),
    parse_instant("2026-12-18T15:30"),
    parse_instant("2026-12-21T09:15"),
    parse_instant("2026-12-22T16:45"),
]


def run_child(url: str, config: Config, sent: Path, instants: list[datetime],
              progress: Path, kill_after: float | None) -> int:
    """Fork a stepping child, SIGKILL it after kill_after seconds (or let it finish)."""
    child = FORK.Process(target=resume_child, args=(url, config, sent, instants, progress))
    child.start()
    if kill_after is None:
        child.join(timeout=120)
    else:
        time.sleep(kill_after)  # real-time ok
        child.kill()
        child.join(timeout=30)
    if child.exitcode is None:
        child.kill()
        child.join()
        pytest.fail("a stepping child hung")
    assert child.exitcode in (0, -signal.SIGKILL), f"child failed with {child.exitcode}"
    return child.exitcode


def crash_and_restart(url: str, tmp_path: Path, trials: int, seed: int) -> None:
    """Kill a stepping child trials times at random, finish uninterrupted, check exactly-once."""
    # Given four cases in a fresh database and their timeline stepped hour by hour,
    config = prepare(url, CLOCK_STARTS)
    instants = timeline(url, timedelta(hours=1))
    sent, progress = tmp_path / "sent.jsonl", tmp_path / "progress"
    rng = random.Random(seed)
    # The kill delay's ceiling follows the progress, so the kills spread over the whole run.
    ceiling, killed, interrupted_sends, started = 0.02, 0, 0, time.monotonic()
    # When a child stepping through it is killed at a random instant, trials times,
    for trial in range(trials):
        exit_code = run_child(url, config, sent, instants, progress, rng.uniform(0, ceiling))
        killed += exit_code == -signal.SIGKILL
        interrupted_sends += sending_rows(url) > 0
        planned = min(1.0, (trial + 1) / (0.85 * trials)) * len(instants)
        ceiling = min(2.0, max(0.002, ceiling * (1.15 if read_progress(progress) < planned
                                                 else 1 / 1.15)))
    # and one last child runs to the end, an hour past the end of the timeline,
    end = instants[-1]
    run_child(url, config, sent, [*instants, end + timedelta(hours=1)], progress, None)
    result = outcome(url, sent, end)
    print(f"\n{url.split(':')[0]}: {trials} kills, {killed} mid-run,"
          f" {interrupted_sends} left a row 'sending', {result.found_in_sent} found in Sent,"
          f" {result.actions_done} actions, {sum(result.sent.values())} sends,"
          f" {time.monotonic() - started:.1f} s")
    # then every action due ran, every row was sent, and the mailbox got each exactly once,
    assert result.actions_done > 0 and not result.pending_actions
    assert not result.unsent_rows
    assert result.sent == result.message_ids
    assert set(result.sent.values()) == {1}
    # Every ballot was posted to chat exactly once too.
    assert result.chat_posts and set(result.chat_posts.values()) == {1}
    # and each milestone went overdue once, with one audit entry, in an intact chain.
    assert result.overdue_audits and set(result.overdue_audits.values()) == {1}
    assert len(result.overdue_audits) == result.overdue_milestones
    assert result.audit_ok
    # Most kills must have landed while the child was still stepping, or the test proves little.
    assert killed >= trials // 2


@pytest.mark.slow
def test_sigkill_at_random_points_on_sqlite_acts_and_sends_exactly_once(tmp_path: Path) -> None:
    crash_and_restart(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}", tmp_path, trials=220, seed=1)


@pytest.mark.slow
def test_sigkill_at_random_points_on_postgresql_acts_and_sends_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    crash_and_restart(postgres_url, tmp_path, trials=40, seed=2)
