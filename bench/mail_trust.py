"""Time the corpus's worst message and its median one through ingest+handle, against a bare parse.

Usage: .venv/bin/python bench/mail_trust.py [--repeat 3]

Every message in tests/corpus (the hostile set included: 1 MB headers, 100,000-character names,
bodies built against our patterns) is put in the inbox of a fresh copy of the corpus world and
taken through Engine.ingest and Engine.handle_inbound (SQLite, WAL, synchronous=FULL), best of
--repeat runs. The baseline is email.message_from_bytes of the same bytes (the standard
library's default policy), best of five. Printed: the worst message by the bot's time, the
median message, and the worst ratio, each as bot time / bare parse time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from email import message_from_bytes
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from bot.kernel.mailbox import FetchedMail  # noqa: E402
from tests.handlers.world import HANDLED, build_world, make_engine, world_config  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def bare_seconds(raw: bytes) -> float:
    """Return the best of five plain parses of the bytes."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        message_from_bytes(raw)
        best = min(best, time.perf_counter() - started)
    return best


def bot_seconds(world: Path, raw: bytes, name: str, config: dict[str, object],
                repeat: int) -> float:
    """Return the best time of ingest+handle for one message, each run on a fresh world copy."""
    best = float("inf")
    for run in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="rrbench-"))
        shutil.copy(world, folder / "rrbot.sqlite3")
        engine, mailbox = make_engine(world_config(folder, **config), folder)
        mailbox.inbox.append(FetchedMail(f"{name}:{run}", raw))
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            engine.ingest(HANDLED)
            engine.handle_inbound(HANDLED)
            best = min(best, time.perf_counter() - started)
        engine.database.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    return best


def main() -> None:
    """Measure every corpus message and print the worst, the median and the worst ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    manifest = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
    folder = Path(tempfile.mkdtemp(prefix="rrbench-world-"))
    with contextlib.redirect_stdout(io.StringIO()):
        engine, _mailbox = make_engine(world_config(folder), folder)
        build_world(engine)
        engine.step(HANDLED)
    engine.database.dispose()
    rows = []
    for name, expected in sorted(manifest.items()):
        raw = (CORPUS / name).read_bytes()
        bot = bot_seconds(folder / "rrbot.sqlite3", raw, name, expected.get("config", {}),
                          arguments.repeat)
        rows.append((bot, bare_seconds(raw), name, len(raw)))
    rows.sort()
    median = rows[len(rows) // 2]
    chosen = [("worst", rows[-1]), ("median", median),
              ("worst ratio", max(rows, key=lambda row: row[0] / row[1]))]
    print(f"{len(rows)} corpus messages; median bot time "
          f"{statistics.median(row[0] for row in rows) * 1000:.1f} ms")
    print(f"{'':12} {'message':44} {'bytes':>9} {'bot ms':>9} {'bare ms':>9} {'ratio':>8}")
    for label, (bot, bare, name, size) in chosen:
        print(f"{label:12} {name:44} {size:9d} {bot * 1000:9.1f} {bare * 1000:9.2f} "
              f"{bot / bare:8.1f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
