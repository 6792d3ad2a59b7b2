"""Time composing two-part reminders: the composer, the email package as before, and the floor.

Usage: .venv/bin/python bench/compose.py [--messages 1000]

templates/email/milestone_reminder.* are rendered once; then --messages reminders (text and
HTML, each with its own Message-ID and key) are made into bytes three ways, interleaved round
by round, best of five rounds of each:
- bot.kernel.compose.compose_mail, called as enqueue_mail calls it;
- the email package's EmailMessage, as enqueue_mail built the message before the composer
  (tests/kernel/email_package_mail.py);
- the floor of bench/floor.py (messages): f-strings and quoted-printable, no header checks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from bench.floor import messages  # noqa: E402
from bot.kernel.compose import compose_mail  # noqa: E402
from bot.kernel.outbox import display_name, one_line  # noqa: E402
from bot.mail.render import RenderedEmail, render_email  # noqa: E402
from tests.kernel.email_package_mail import email_package_mail  # noqa: E402

ROUNDS = 5
SENT = datetime(2027, 1, 13, 9, tzinfo=UTC)


def reminder() -> RenderedEmail:
    """Render the milestone reminder the busy step sends most, as notify renders it."""
    return render_email(
        "milestone_reminder", recipient_name="Sam Example", case_reference="RR-2027-001",
        today_day=7, submission_day=15, milestone_label="Agency returns due", statutory=True,
        due=datetime(2027, 1, 13, 17, tzinfo=UTC), cockpit="",
        signature="Exampleshire Safeguarding Children Partnership")


def timed(build: Callable[[int], bytes], count: int) -> float:
    """Return the seconds building count messages takes."""
    started = time.perf_counter()
    for number in range(count):
        build(number)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    count = parser.parse_args().messages
    email = reminder()

    def values(number: int) -> dict[str, object]:
        return dict(sender="rapidreview@exampleshire.example",
                    sender_name="Exampleshire Safeguarding Children Partnership",
                    to=["sam.example@exampleshire.example"], subject=email.subject, date=SENT,
                    message_id=f"<rr.{number:032x}@exampleshire.example>",
                    key=f"RR-2027-001:milestone:{number}:reminder", text=email.text,
                    html=email.html)

    def composed(number: int) -> bytes:
        given = values(number)
        return compose_mail(**{**given, "sender_name": display_name(str(given["sender_name"])),
                               "subject": one_line(email.subject)})

    def email_package(number: int) -> bytes:
        return email_package_mail(**values(number))

    rendered = [(email.text, email.html)] * count
    # The three are interleaved round by round so that each sees the same machine.
    rounds = [(timed(composed, count), timed(email_package, count), messages(rendered))
              for _ in range(ROUNDS)]
    composer = min(round_[0] for round_ in rounds)
    before = min(round_[1] for round_ in rounds)
    floor = min(round_[2] for round_ in rounds)
    size = len(composed(0))
    print(f"{count:,} two-part reminders ({size:,} bytes each), best of {ROUNDS} rounds:")
    for label, seconds in (("composer", composer), ("email package", before), ("floor", floor)):
        print(f"  {label:14} {seconds * 1000:8.1f} ms  ({seconds / count * 1e6:6.1f} us each)")
    print(f"composer/floor {composer / floor:.1f}x; email package/floor {before / floor:.1f}x;"
          f" email package/composer {before / composer:.1f}x")


if __name__ == "__main__":
    main()
