"""The quarantine page: each held message, released as what she vouches it is, or discarded."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.commands.base import MANAGERS, CommandError, Context, NotAllowed
from bot.commands.quarantine import (
    DiscardQuarantined,
    ListQuarantine,
    QuarantinedDetail,
    Released,
    ReleaseQuarantined,
    ShowQuarantined,
    discard,
    list_quarantined,
    release,
    show_quarantined,
)
from bot.store.statuses import VouchedAs
from bot.web.core import Refused, checked_form, cockpit_of, render, require_signed_in, run_command
from bot.web.core import tell as tell_next_page

# What she may vouch a held message is, as the release form offers it.
RELEASE_AS = ((VouchedAs.REFERRAL.value, "A referral: open a case for it"),
              (VouchedAs.RETURN.value, "An agency's return"),
              (VouchedAs.VOTE.value, "A partner's vote"),
              (VouchedAs.REPORT.value, "A report version"))
MANAGER_ONLY = ("Sorry, only the partnership's business manager can deal with quarantined"
                " mail.")


def held_messages(context: Context) -> list[QuarantinedDetail]:
    """Read every message waiting in quarantine in full, oldest first."""
    return [show_quarantined(context, ShowQuarantined(line.inbound_id))
            for line in list_quarantined(context, ListQuarantine())]


async def quarantine_page(request: Request) -> Response:
    """List the held messages, each with its release and discard forms."""
    actor = require_signed_in(request)
    if actor.role not in MANAGERS:
        raise Refused(403, "Not allowed", MANAGER_ONLY)
    return await _show(request, {}, {})


async def quarantine_action(request: Request) -> Response:
    """Release a held message as what she vouches it is, or discard it with the reason."""
    actor = require_signed_in(request)
    form = await checked_form(request)
    number, choice = request.path_params["message"], request.path_params["choice"]
    if choice not in ("release", "discard"):
        raise Refused(404, "Page not found", "There is no such page.")
    raw = {name: str(form.get(name, "")).strip() for name in ("as", "reason")}
    missing = ({f"as-{number}": "Choose what the message is"} if choice == "release"
               and not raw["as"] else {f"discard-reason-{number}": "Enter why it can be set"
                                       " aside"} if choice == "discard" and not raw["reason"]
               else {})
    if missing:
        return await _show(request, missing, {f"{choice}-{number}": raw}, status=400)
    try:
        if choice == "release":
            released = await run_command(request, actor, lambda context: release(
                context, ReleaseQuarantined(number, raw["as"], raw["reason"])))
            notice = released_words(released)
        else:
            await run_command(request, actor, lambda context: discard(
                context, DiscardQuarantined(number, raw["reason"])))
            notice = f"Message {number} is discarded; it is kept, and the reason is audited."
    except NotAllowed as exc:
        raise Refused(403, "Not allowed", str(exc)) from None
    except CommandError as exc:
        field = f"as-{number}" if choice == "release" else f"discard-reason-{number}"
        return await _show(request, {field: _sentence(str(exc))},
                           {f"{choice}-{number}": raw}, status=400)
    cockpit_of(request).on_change()
    tell_next_page(request, notice)
    return RedirectResponse("/quarantine", status_code=303)


def released_words(released: Released) -> str:
    """Say what a release did, in her words; what it sends, and its copy, go at the next step."""
    source, target = released.folders
    then = f"the mail goes, and its copy moves from {source} to {target}, at the bot's next step."
    if released.kind == "referral" and released.case_reference:
        return f"{released.case_reference} opened and acknowledged; {then}"
    on_case = f" on {released.case_reference}" if released.case_reference else ""
    detail = f" ({released.detail})" if released.detail else ""
    return (f"Message {released.inbound_id} released as {released.kind.replace('_', ' ')}"
            f"{on_case}{detail}; {then}")


async def _show(request: Request, errors: dict[str, str], raw: dict[str, dict[str, str]],
                status: int = 200) -> Response:
    actor = require_signed_in(request)
    try:
        held = await run_command(request, actor, held_messages)
    except NotAllowed as exc:
        raise Refused(403, "Not allowed", str(exc)) from None
    return render(request, "quarantine.html.j2", status=status, actor=actor, held=held,
                  errors=errors, raw=raw, release_as=RELEASE_AS)


def _sentence(refusal: str) -> str:
    # The commands' refusals are terminal lines; the page shows them as a sentence.
    refusal = refusal.replace("--as", "What it is")
    return refusal[:1].upper() + refusal[1:]
