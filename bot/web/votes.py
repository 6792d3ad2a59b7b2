"""Votes by a personal link: the page, the vote, the report version to download."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from bot.commands.base import CommandError
from bot.commands.vote_links import VoteByLink, read_vote_link, vote_by_link, vote_link_report
from bot.web.core import Refused, checked_form, cockpit_of, render, run_command


async def vote_page(request: Request) -> Response:
    """Show the ballot a link is for, and count the vote when the form is sent."""
    token = request.path_params["token"]
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    if request.method == "POST":
        form = await checked_form(request)
        raw = {"choice": str(form.get("choice", "")), "rationale": str(form.get("rationale", ""))}
        if not raw["choice"]:
            errors["choice"] = "Choose your organisation's answer"
        else:
            try:
                cast = await run_command(request, None, lambda context: vote_by_link(
                    context, VoteByLink(token, raw["choice"], raw["rationale"])))
            except CommandError as exc:
                errors["choice" if "used" not in str(exc) else "link"] = str(exc)
            else:
                cockpit_of(request).on_change()
                return render(request, "vote_done.html.j2", cast=cast,
                              closed=cast.closed_with is not None)
    try:
        page = await run_command(request, None, lambda context: read_vote_link(context, token))
    except CommandError as exc:
        raise Refused(403, "This vote link cannot be used", str(exc)) from None
    if "link" in errors:
        raise Refused(409, "This vote link has been used", errors["link"])
    return render(request, "vote.html.j2", status=400 if errors else 200, page=page,
                  errors=errors, raw=raw)


async def vote_report(request: Request) -> Response:
    """Download the report version a sign-off link is about."""
    token = request.path_params["token"]
    try:
        filename, path = await run_command(request, None,
                                           lambda context: vote_link_report(context, token))
    except CommandError as exc:
        raise Refused(404, "No report to download", str(exc)) from None
    return FileResponse(path, filename=filename, content_disposition_type="attachment")
