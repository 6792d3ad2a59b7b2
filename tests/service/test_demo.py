"""`rrbot demo` as a new user runs it: a whole case, submitted before 16:00 on Day 15."""

from __future__ import annotations

import io
import mailbox
import time
from pathlib import Path

import pytest
from rich.console import Console

from bot.process.working_days import parse_instant
from bot.service.demo import run_demo


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["oldham", "warrington"])
def test_the_demo_submits_before_the_cut_off_in_under_a_minute(
    tmp_path: Path, preset: str
) -> None:
    # Given the demo of a referral on Friday 18 December 2026,
    output = io.StringIO()
    started = time.monotonic()
    result = run_demo(tmp_path, parse_instant("2026-12-18T10:00"), preset,
                      Console(file=output, width=160))
    elapsed = time.monotonic() - started
    # then the report went before the cut-off, within the minute a new user waits,
    assert result.submitted_at is not None and result.submitted_at <= result.cutoff
    assert result.cutoff == parse_instant("2027-01-13T16:00" if preset == "oldham"
                                          else "2027-01-13T17:00")
    assert elapsed < 60
    # and the story it printed has each act of the case in it.
    printed = output.getvalue()
    for event in ("case RR-2026-001 opened", "acknowledged the referral",
                  "decision ballot closed: rapid_review", "asked for information",
                  "hospital replied: no involvement", "ESCALATED",
                  "report version 2 received", "signoff ballot closed: approve",
                  "SUBMITTED the report", "submission confirmed in Sent"):
        assert event in printed, event
    # The National Panel's mailbox got one message, and the digest was kept as a page.
    sent = mailbox.Maildir(str(tmp_path / "var" / "mail" / "sent"), create=False)
    to_panel = [key for key in sent.keys()
                if "NationalReviewPanel" in str(sent.get_message(key)["To"])]
    assert len(to_panel) == 1
    assert (tmp_path / "digest.html").read_text(encoding="utf-8").startswith("<")
    # The fictional child's name never reached chat.
    assert "Fairweather" not in (tmp_path / "chat.log").read_text(encoding="utf-8")
