"""Time 2,000 mixed messages through the whole inbound pipeline against a bare parse of them.

Usage: .venv/bin/python bench/ingest.py [--messages 2000]

The messages are the shapes of tests/corpus (replies, referrals, out-of-office notices, DSNs,
spoofs, MIME bombs...), each with a Message-ID of its own; a fifth carry a 50 KB .docx (one
in ten of those is a referral that opens a case, the rest are agency returns, as in a real
partnership mailbox, where returns far outnumber referrals). The pipeline run stores
every message (SQLite, WAL, synchronous=FULL) and handles it in its own transaction; the bare
run is email.message_from_bytes(raw, policy=policy.default) decoding every part. The goal is
a pipeline rate of at least half the bare rate.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from bot.kernel.mailbox import FetchedMail  # noqa: E402
from tests.corpus.make_corpus import DOCX, FULL_FORM, docx_form, mail, person, trace  # noqa: E402
from tests.handlers.world import (  # noqa: E402
    HANDLED,
    build_world,
    make_engine,
    request_message_id,
    world_config,
)

CORPUS = ROOT / "tests" / "corpus"
# Corpus shapes that need a configuration of their own are left out of the mix.
LEFT_OUT = {"oversized.eml"}
MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[^\r\n]*\r?\n")


class ListMailbox:
    """A mailbox whose inbox is a list; sends and moves are ignored (the bench measures intake)."""

    def __init__(self, name: str, mails: list[FetchedMail]) -> None:
        self.name = name
        self.mails = mails

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message once."""
        yield from self.mails
        self.mails = []

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Ignore the move."""

    def send(self, message: object) -> None:
        """Ignore the send."""

    def send_raw(self, mail: object) -> None:
        """Ignore the send."""

    def find_sent(self, message_id: str) -> bool:
        """Say nothing was sent."""
        return False

    def wait_for_mail(self, timeout: float) -> bool:
        """Never wait."""
        return False

    def check(self) -> list[str]:
        """Describe the mailbox."""
        return ["bench"]

    def close(self) -> None:
        """Nothing to close."""


def unique(raw: bytes, number: int) -> bytes:
    """Give a message a Message-ID of its own, so that de-duplication keeps every copy."""
    header = f"Message-ID: <bench.{number}@bench.example>\r\n".encode()
    if MESSAGE_ID.search(raw):
        return MESSAGE_ID.sub(lambda _match: header, raw, count=1)
    return header + raw


def messages(count: int) -> list[bytes]:
    """Build the mix: corpus shapes for four fifths, 50 KB .docx messages for one fifth."""
    shapes = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))
              if path.name not in LEFT_OUT]
    large = docx_form(**FULL_FORM, padding="60")
    referral = mail(person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
                           "Serious incident referral", "<r@gp.example>"),
                    "Referral attached.", prefix=trace("gp.example"),
                    files=[("Referral form.docx", large, "application", DOCX)])
    agency_return = mail(person("Dr Lee Safeguarding", "lee.safeguarding@gp.example",
                                "RE: [RR-2026-001] Information request", "<a@gp.example>",
                                in_reply_to=request_message_id("RR-2026-001", "gp")),
                         "Our summary is attached.", prefix=trace("gp.example"),
                         files=[("GP summary.docx", large, "application", DOCX)])
    mix = []
    for number in range(count):
        if number % 5 == 4:
            raw = referral if number % 50 == 4 else agency_return
        else:
            raw = shapes[number % len(shapes)]
        mix.append(unique(raw, number))
    return mix


def bare_parse(raws: list[bytes]) -> float:
    """Parse every message with the standard library and decode every part; return seconds."""
    started = time.perf_counter()
    for raw in raws:
        message = message_from_bytes(raw, policy=policy.default)
        for part in message.walk():
            if not part.is_multipart():
                try:
                    part.get_content()  # type: ignore[attr-defined]
                except (KeyError, LookupError, ValueError, AssertionError):
                    pass
    return time.perf_counter() - started


def pipeline(raws: list[bytes], folder: Path) -> tuple[float, Counter[str]]:
    """Store and handle every message through the engine on SQLite; return seconds and kinds."""
    config = world_config(folder)
    engine, _recording = make_engine(config, folder)
    build_world(engine)
    engine.mailbox = ListMailbox(config.settings.mailbox.address,
                                 [FetchedMail(f"m{n}", raw) for n, raw in enumerate(raws)])
    started = time.perf_counter()
    stored = engine.ingest(HANDLED)
    handled = engine.handle_inbound(HANDLED)
    elapsed = time.perf_counter() - started
    assert stored == len(raws) == len(handled), (stored, len(handled))
    engine.database.dispose()
    return elapsed, Counter(handled)


def main() -> None:
    """Run both and print the rates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    arguments = parser.parse_args()
    raws = messages(arguments.messages)
    size = sum(len(raw) for raw in raws)
    print(f"{len(raws)} messages, {size / 1e6:.1f} MB")
    bare = bare_parse(raws)
    with tempfile.TemporaryDirectory() as folder:
        piped, kinds = pipeline(raws, Path(folder))
    bare_rate, pipe_rate = len(raws) / bare, len(raws) / piped
    print(f"bare parse (policy.default, every part): {bare_rate:8.0f} messages/s ({bare:.2f} s)")
    print(f"whole inbound pipeline into SQLite:      {pipe_rate:8.0f} messages/s ({piped:.2f} s)")
    print(f"pipeline / bare: {pipe_rate / bare_rate:.0%} (goal: at least 50%)")
    print("outcomes:", ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))


if __name__ == "__main__":
    main()
