"""What every cockpit page shares: who is signed in, a command's transaction, CSRF, rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.commands.base import MANAGERS, Actor, CommandError, Context, NotAllowed
from bot.commands.people import VISITOR, web_actor
from bot.config import Config
from bot.mail.render import TEMPLATES, london_time
from bot.store.db import transaction

T = TypeVar("T")

# A signed-in session ends after this long without a request.
IDLE_LIMIT = timedelta(minutes=20)
STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class Cockpit:
    """The running cockpit's config, database, clock and how to wake the engine after a change."""

    config: Config
    database: Engine
    clock: Callable[[], datetime]
    on_change: Callable[[], None] = field(default=lambda: None)


class Refused(Exception):
    """A request the cockpit turns away with a page: not signed in, a bad form, a refusal."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def cockpit_of(request: Request) -> Cockpit:
    """Return the cockpit serving a request."""
    found: Cockpit = request.app.state.cockpit
    return found


def signed_in(request: Request) -> Actor | None:
    """Return who is signed in, or None; a session idle too long is ended here."""
    cockpit = cockpit_of(request)
    address = request.session.get("address")
    if not address:
        return None
    now = cockpit.clock()
    seen = datetime.fromisoformat(request.session.get("seen", "1970-01-01T00:00:00+00:00"))
    if now - seen > IDLE_LIMIT:
        request.session.clear()
        request.session["expired"] = True
        return None
    request.session["seen"] = now.isoformat()
    return web_actor(cockpit.config, address)


def require_signed_in(request: Request) -> Actor:
    """Return who is signed in, or send them to sign in."""
    actor = signed_in(request)
    if actor is None:
        raise Refused(303, "Sign in", request.url.path)
    return actor


async def run_command(request: Request, actor: Actor | None,
                      command: Callable[[Context], T]) -> T:
    """Run a command in its own transaction off the event loop; a refusal is committed too."""
    cockpit = cockpit_of(request)

    def work() -> T | CommandError:
        with transaction(cockpit.database) as session:
            # A refusal's audit entry is kept; anything else a failed command did is undone.
            savepoint = session.begin_nested()
            try:
                result = command(Context(session, cockpit.config, actor or VISITOR,
                                         cockpit.clock()))
            except NotAllowed as exc:
                savepoint.commit()
                return exc
            except CommandError as exc:
                savepoint.rollback()
                return exc
            savepoint.commit()
            return result

    outcome = await run_in_threadpool(work)
    if isinstance(outcome, CommandError):
        raise outcome
    return outcome


def csrf_token(request: Request) -> str:
    """Return the session's CSRF token, making one for a new session."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def checked_form(request: Request) -> FormData:
    """Read a posted form, refusing it unless it carries the session's CSRF token."""
    cockpit = cockpit_of(request)
    limit = cockpit.config.settings.mailbox.max_message_bytes
    if int(request.headers.get("content-length") or 0) > limit + 65536:
        raise Refused(413, "File too large",
                      f"A file must be smaller than {limit // (1024 * 1024)} MB.")
    form = await request.form(max_part_size=limit + 1)
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(str(form.get("csrf_token", "")), expected):
        raise Refused(403, "This form has expired",
                      "The form was sent without its security token, or from an old page. Go"
                      " back, reload the page and try again.")
    return form


@lru_cache(maxsize=2)
def pages(folder: Path = TEMPLATES) -> Environment:
    """Build the page templates' environment: HTML escaped, a missing value an error."""
    env = Environment(loader=FileSystemLoader(folder), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["london"] = london_time
    env.filters["short_hash"] = lambda sha256: (sha256 or "")[:12]
    return env


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render templates/web/<template> with who is signed in, the CSRF token and a notice."""
    actor = values.pop("actor", None)
    cockpit = cockpit_of(request)
    html = pages().get_template(f"web/{template}").render(
        actor=actor, manager=actor is not None and actor.role in MANAGERS,
        csrf_token=csrf_token(request), notice=request.session.pop("notice", None),
        partnership=cockpit.config.settings.partnership.name, path=request.url.path,
        **values)
    return HTMLResponse(html, status_code=status)


def tell(request: Request, notice: str) -> None:
    """Show a notice (what was just done) at the top of the next page."""
    request.session["notice"] = notice
