"""The physical floor of sending N reminders, measured on this machine: commits, renders, bytes.

The floor of a step that runs N due actions, each sending one email, is the sum of three parts
the bot cannot avoid, each done N times with nothing else:
- a durable SQLite commit of a state change plus its outbox row (WAL, synchronous=FULL);
- a render of a two-part (text and HTML) reminder with Jinja;
- a two-part MIME message assembled as bytes, each part quoted-printable.
"""

from __future__ import annotations

import quopri
import sqlite3
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment

TEXT = """Dear {{ name }},

Case {{ reference }} (Day {{ day }} of 15): "{{ label }}" is due by {{ due }}.

It is not yet recorded as done. When it is, nothing more is needed from you.

{{ signature }}
"""
HTML = """<p>Dear {{ name }},</p>
<p>Case <b>{{ reference }}</b> (Day {{ day }} of 15): &ldquo;{{ label }}&rdquo; is due by
{{ due }}.</p>
<p>It is not yet recorded as done. When it is, nothing more is needed from you.</p>
<p>{{ signature }}</p>
"""


def commits(folder: Path, count: int) -> float:
    """Return the seconds count durable commits of a state change and an outbox row take."""
    path = folder / "floor.sqlite3"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE action (id INTEGER PRIMARY KEY, status TEXT)")
    connection.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, key TEXT UNIQUE,"
                       " payload BLOB)")
    connection.executemany("INSERT INTO action (id, status) VALUES (?, 'pending')",
                            [(number,) for number in range(count)])
    payload = b"x" * 2000
    started = time.perf_counter()
    for number in range(count):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE action SET status = 'done' WHERE id = ?", (number,))
        connection.execute("INSERT INTO outbox (key, payload) VALUES (?, ?)",
                           (f"floor:{number}", payload))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def renders(count: int) -> tuple[float, list[tuple[str, str]]]:
    """Return the seconds count two-part reminder renders take, and what they rendered."""
    environment = Environment(autoescape=False)
    text = environment.from_string(TEXT)
    html = Environment(autoescape=True).from_string(HTML)
    started = time.perf_counter()
    rendered = []
    for number in range(count):
        values = {"name": "Sam Example", "reference": f"RR-2027-{number:03d}", "day": 7,
                  "label": "Agency returns due", "due": "17:00 on Wednesday 13 January 2027",
                  "signature": "Exampleshire Safeguarding Children Partnership"}
        rendered.append((text.render(values), html.render(values)))
    return time.perf_counter() - started, rendered


def messages(rendered: list[tuple[str, str]]) -> float:
    """Return the seconds assembling each rendered pair as two-part MIME bytes takes."""
    date = format_datetime(datetime(2027, 1, 13, 9, tzinfo=UTC))
    started = time.perf_counter()
    for number, (text, html) in enumerate(rendered):
        boundary = f"=_floor_{number:08d}"
        head = (f"From: Rapid Review <rapidreview@exampleshire.example>\r\n"
                f"To: sam.example@exampleshire.example\r\nSubject: Reminder {number}\r\n"
                f"Date: {date}\r\nMessage-ID: <{number:016x}@exampleshire.example>\r\n"
                f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;"
                f' boundary="{boundary}"\r\n\r\n').encode("ascii")
        parts = [head]
        for subtype, body in (("plain", text), ("html", html)):
            parts.append(f"--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii"))
            parts.append(quopri.encodestring(body.encode("utf-8")).replace(b"\n", b"\r\n"))
            parts.append(b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode("ascii"))
        b"".join(parts)
    return time.perf_counter() - started


def floor(folder: Path, count: int) -> float:
    """Return the seconds the floor of count reminders takes: commits, renders and bytes."""
    rendering, rendered = renders(count)
    return commits(folder, count) + rendering + messages(rendered)
