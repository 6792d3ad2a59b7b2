"""The pages to read: the case board, a case's file, its documents, undelivered messages."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from bot.commands.base import CommandError, Context, NotAllowed
from bot.commands.board import CASES_PER_PAGE, case_board
from bot.commands.case_file import case_document, case_file
from bot.commands.outbox import GiveUp, Resend, give_up, resend, undelivered
from bot.commands.records import ExportCase, export_case_records
from bot.web.core import (
    Refused,
    checked_form,
    cockpit_of,
    render,
    require_signed_in,
    run_command,
    tell,
)

T = TypeVar("T")


async def home(request: Request) -> Response:
    """Send people to the case board."""
    return RedirectResponse("/cases", status_code=303)


async def board(request: Request) -> Response:
    """Show every open case, worst first, or the closed ones on their own tab."""
    actor = require_signed_in(request)
    closed = request.query_params.get("tab") == "closed"
    asked = request.query_params.get("page", "1")
    number = int(asked) if asked.isdigit() else 1
    board_page = await _read(request, lambda context: case_board(context, closed, number))
    return render(request, "board.html.j2", actor=actor, lines=board_page.lines,
                  board=board_page, lines_per_page=CASES_PER_PAGE, closed=closed)


async def case_page(request: Request) -> Response:
    """Show one case's file."""
    actor = require_signed_in(request)
    reference = request.path_params["reference"]
    found = await _read(request, lambda context: case_file(context, reference))
    return render(request, "case.html.j2", actor=actor, file=found,
                  now=cockpit_of(request).clock())


async def document(request: Request) -> Response:
    """Download one of a case's documents."""
    require_signed_in(request)
    reference, number = request.path_params["reference"], request.path_params["document"]
    filename, path = await _read(request, lambda context: case_document(context, reference,
                                                                        number))
    return FileResponse(path, filename=filename, content_disposition_type="attachment")


async def case_export(request: Request) -> Response:
    """Download a case's records as a zip, written afresh and deleted once sent."""
    require_signed_in(request)
    reference = request.path_params["reference"]
    folder = Path(tempfile.mkdtemp(prefix="rrbot-export-"))
    out = folder / f"{reference}-records.zip"
    try:
        await _read(request, lambda context: export_case_records(context,
                                                                 ExportCase(reference, out)))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(out, filename=out.name, media_type="application/zip",
                        content_disposition_type="attachment",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


async def undelivered_page(request: Request) -> Response:
    """List the messages the bot could not deliver, each with resend and give up."""
    actor = require_signed_in(request)
    letters = await _read(request, undelivered)
    return render(request, "undelivered.html.j2", actor=actor, letters=letters, errors={})


async def undelivered_action(request: Request) -> Response:
    """Resend an undelivered message, or give it up with the reason."""
    actor = require_signed_in(request)
    form = await checked_form(request)
    number = request.path_params["message"]
    choice = request.path_params["choice"]
    reason = str(form.get("reason", ""))
    try:
        if choice == "resend":
            await run_command(request, actor, lambda context: resend(context, Resend(number)))
            tell(request, f"Message {number} is queued again and goes on the next send.")
        else:
            await run_command(request, actor,
                              lambda context: give_up(context, GiveUp(number, reason)))
            tell(request, f"Message {number} will not be sent; the reason is in the audit.")
    except NotAllowed as exc:
        raise Refused(403, "Not allowed", str(exc)) from None
    except CommandError as exc:
        letters = await _read(request, undelivered)
        return render(request, "undelivered.html.j2", status=400, actor=actor,
                      letters=letters, errors={f"reason-{number}": str(exc)})
    cockpit_of(request).on_change()
    return RedirectResponse("/undelivered", status_code=303)


async def _read(request: Request, query: Callable[[Context], T]) -> T:
    actor = require_signed_in(request)
    try:
        return await run_command(request, actor, query)
    except NotAllowed as exc:
        raise Refused(403, "Not allowed", str(exc)) from None
    except CommandError as exc:
        raise Refused(404, "Not found", str(exc)) from None
