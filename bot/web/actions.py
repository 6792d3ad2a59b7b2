"""The business manager's action forms: one page each, one command each, errors in words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.commands import agencies, ballots, cases, report
from bot.commands.base import MANAGERS, CommandError, Context, NotAllowed
from bot.commands.people import voter_choices
from bot.web.core import Refused, checked_form, cockpit_of, render, require_signed_in, run_command
from bot.web.core import tell as tell_next_page
from bot.web.forms import Field, read_form
from bot.web.forms import at as instant

Options = dict[str, tuple[tuple[str, str], ...]]
AGENCY = Field("agency", "Agency", "select")
DEADLINE_TIME = Field("time", "Time", "time", required=False,
                      hint="For example 16:00. Leave it empty for the end of the working day.")
KINDS = (("decision", "Partner decision"), ("signoff", "Report sign-off"))


@dataclass(frozen=True)
class Action:
    """One action form: its fields, the choices it offers on a case, and the command it runs."""

    slug: str
    title: str
    button: str
    fields: tuple[Field, ...]
    perform: Callable[[Context, str, dict[str, Any]], str]
    choices: Callable[[Context, str], Options] = lambda context, reference: {}
    description: str = ""


def _requests(context: Context, reference: str) -> Options:
    return {"agency": tuple(agencies.open_request_choices(context, reference))}


def _extend(context: Context, reference: str, values: dict[str, Any]) -> str:
    due = instant(context.config, values["date"], values["time"])
    agencies.extend_request(context, agencies.ExtendDeadline(reference, values["agency"], due))
    return f"The deadline is now {_words(due)}; reminders and the escalation moved with it."


def _add(context: Context, reference: str, values: dict[str, Any]) -> str:
    state = agencies.add_agency(context, agencies.AddAgency(reference, values["agency"]))
    return f"The request is on its way; the return is due {_words(state.due_at)}."


def _add_one_off(context: Context, reference: str, values: dict[str, Any]) -> str:
    state = agencies.add_one_off_agency(context, agencies.AddOneOffAgency(
        reference, values["name"], values["contact"], values["escalation"]))
    return f"The request is on its way; the return is due {_words(state.due_at)}."


def _withdraw(context: Context, reference: str, values: dict[str, Any]) -> str:
    agencies.withdraw_request(context, agencies.WithdrawAgency(reference, values["agency"]))
    return "The request is withdrawn; nothing more will be sent to the agency."


def _received(context: Context, reference: str, values: dict[str, Any]) -> str:
    agencies.record_return(context, agencies.RecordReturn(reference, values["agency"],
                                                          values["evidence"]))
    return "The return is recorded; the agency will not be chased again."


def _report(context: Context, reference: str, values: dict[str, Any]) -> str:
    filename, content = values["report"]
    added = report.add_report_version(context, report.AddReportVersion(reference, filename,
                                                                       content))
    return (f"Version {added.sha256[:12]} is stored and sent to the partners for sign-off.")


def _hold(context: Context, reference: str, values: dict[str, Any]) -> str:
    until = instant(context.config, values["date"], values["time"])
    held = report.hold_submission(context, report.HoldSubmission(reference, until))
    return f"The submission will not go before {_words(held.until)}."


def _submit(context: Context, reference: str, values: dict[str, Any]) -> str:
    going = report.submit_report(context, report.SubmitReport(reference, values["late"]))
    return ("The held submission is released and goes on the next send." if going.released
            else "The approved version is queued for the National Panel.")


def _recommend(context: Context, reference: str, values: dict[str, Any]) -> str:
    report.record_recommendation(context, report.RecordRecommendation(
        reference, values["review"], values["rationale"]))
    return "The recommendation is recorded for the covering email."


def _phone_vote(context: Context, reference: str, values: dict[str, Any]) -> str:
    partner, member = values["member"].split("|", 1)
    cast = ballots.cast_vote(context, ballots.CastVote(
        ballots.OpenBallotOnCase(reference, values["kind"]), values["choice"],
        values["rationale"] or "", ballots.VoteSource.RECORDED,
        on_behalf=ballots.OnBehalf(partner, member, values["evidence"])))
    closed = f" The ballot closed: {cast.closed_with.replace('_', ' ')}." if (
        cast.closed_with) else ""
    return f"The vote of {cast.member_name} is recorded.{closed}"


def _reopen(context: Context, reference: str, values: dict[str, Any]) -> str:
    opened = ballots.reopen_ballot(context, ballots.ReopenBallot(reference, values["kind"]))
    return f"The partners are asked again; the ballot closes {_words(opened.closes_at)}."


def _milestone(context: Context, reference: str, values: dict[str, Any]) -> str:
    done_at = instant(context.config, values["date"], values["time"])
    cases.mark_milestone_done(context, cases.MarkMilestoneDone(reference, values["milestone"],
                                                               done_at))
    return "The milestone is recorded as done; the steps counted from it are re-dated."


def _open(context: Context, reference: str, values: dict[str, Any]) -> str:
    start = instant(context.config, values["date"], values["time"])
    opened = cases.open_case(context, cases.OpenCase(start, values["referrer"]))
    return f"opened:{opened.reference}"


def _close(context: Context, reference: str, values: dict[str, Any]) -> str:
    cases.close_case(context, cases.CloseCase(reference, values["reason"]))
    return "The case is closed; nothing more is chased or sent for it."


def _panel_response(context: Context, reference: str, values: dict[str, Any]) -> str:
    received = instant(context.config, values["date"], values["time"])
    changed = cases.record_panel_response(context, cases.RecordPanelResponse(
        reference, values["decision"], received))
    return ("The National Panel's response is recorded and the case is closed." if changed.closed
            else "The National Panel's response is recorded; the case stays open.")


def _commission(context: Context, reference: str, values: dict[str, Any]) -> str:
    decided = instant(context.config, values["date"], values["time"])
    cases.commission_local_review(context, cases.CommissionLocalReview(reference, decided))
    return "The local review is commissioned; its steps are dated from the decision."


def _set_date(context: Context, reference: str, values: dict[str, Any]) -> str:
    changed = cases.set_milestone_date(context, cases.SetMilestoneDate(
        reference, values["milestone"], values["date"]))
    return f"The step is now due {_words(changed.milestone_due)}; the steps after it moved."


def _words(instant_: Any) -> str:
    from bot.mail.render import london_time

    return london_time(instant_) if instant_ is not None else "on the case's deadline"


REVIEWS = (("local", "A local child safeguarding practice review"),
           ("national", "A national review, for the National Panel to consider"),
           ("none", "No further review"))
PANEL_ANSWERS = tuple((key, words[:1].upper() + words[1:])
                      for key, words in cases.PANEL_RESPONSES)
CHOICES = tuple((option.value, option.label)
                for kind in ("decision", "signoff") for option in ballots.OPTIONS[kind])
ACTIONS = {action.slug: action for action in (
    Action("extend", "Extend an agency's deadline", "Extend the deadline",
           (AGENCY, Field("date", "New deadline", "date", hint="For example, 8 1 2027"),
            DEADLINE_TIME), _extend, _requests),
    Action("add-agency", "Ask another agency", "Send the request",
           (Field("agency", "Agency", "select",
                  hint="Agencies in the partnership's list that this case has not asked."),),
           _add, lambda context, reference: {"agency": tuple(
               agencies.agencies_to_add(context, reference))},
           "Not in the list? Ask a one-off agency instead."),
    Action("add-one-off-agency", "Ask a one-off agency", "Send the request",
           (Field("name", "Agency name"),
            Field("contact", "Safeguarding contact's email address", "email"),
            Field("escalation", "Senior officer's email address", "email", required=False,
                  hint="Missed deadlines are escalated to this person. Optional.")),
           _add_one_off),
    Action("withdraw", "Withdraw an agency", "Withdraw the request", (AGENCY,), _withdraw,
           _requests),
    Action("record-return", "Record a return received another way", "Record the return",
           (AGENCY, Field("evidence", "How it came", "textarea",
                          hint="For example: through the secure portal on 6 January.")),
           _received, _requests),
    Action("report", "Upload a report version", "Upload and send for sign-off",
           (Field("report", "Report file", "file",
                  hint="A .docx or .pdf file. It goes to the partners for sign-off."),),
           _report),
    Action("hold", "Hold the submission", "Hold the submission",
           (Field("date", "Not before", "date", hint="For example, 13 1 2027"),
            DEADLINE_TIME), _hold),
    Action("submit", "Submit or release the report", "Submit the report",
           (Field("late", "The cut-off has passed and the report should still go",
                  "checkbox", required=False),), _submit,
           description="A held submission is released; otherwise the approved version is"
                       " queued for the National Panel."),
    Action("recommend", "Record the review recommendation", "Record the recommendation",
           (Field("review", "The partners recommend", "radios", options=REVIEWS),
            Field("rationale", "Why", "textarea")), _recommend),
    Action("phone-vote", "Record a vote given by phone", "Record the vote",
           (Field("kind", "Ballot", "radios", options=KINDS),
            Field("member", "Who voted", "select"),
            Field("choice", "Their choice", "select", options=CHOICES),
            Field("rationale", "Their rationale", "textarea", required=False,
                  hint="Needed for anything but an approval."),
            Field("evidence", "How they gave it", "textarea",
                  hint="For example: by phone to Sam at 14:10.")),
           _phone_vote, lambda context, reference: {"member": tuple(
               voter_choices(context.config))}),
    Action("reopen", "Ask the partners again", "Reopen the ballot",
           (Field("kind", "Ballot", "radios", options=KINDS),), _reopen),
    Action("milestone-done", "Mark a milestone done", "Mark it done",
           (Field("milestone", "Milestone", "select"),
            Field("date", "Done on", "date", hint="For example, 6 1 2027"),
            DEADLINE_TIME), _milestone,
           lambda context, reference: {"milestone": tuple(
               cases.pending_milestones(context, reference))}),
    Action("close", "Close the case", "Close the case",
           (Field("reason", "Why the case is closed", "textarea",
                  hint="For example: the partners decided the criteria are not met."),),
           _close, description="Nothing more is chased, planned or sent for a closed case."),
    Action("panel-response", "Record the National Panel's response", "Record the response",
           (Field("decision", "The National Panel", "radios", options=PANEL_ANSWERS),
            Field("date", "Received on", "date", hint="For example, 3 2 2027"), DEADLINE_TIME),
           _panel_response,
           description="The case closes unless more is to come (more information, or a local"
                       " review the partners commissioned)."),
    Action("commission-review", "Commission a local review", "Commission the review",
           (Field("date", "The partners decided on", "date", hint="For example, 3 2 2027"),
            DEADLINE_TIME), _commission,
           description="The review's own steps are dated from this decision: six months to"
                       " completion."),
    Action("set-date", "Set a date by hand", "Set the date",
           (Field("milestone", "Step", "select",
                  hint="Steps whose date a person decides, such as the publication."),
            Field("date", "On", "date", hint="For example, 14 9 2027")), _set_date,
           lambda context, reference: {"milestone": tuple(
               cases.hand_dated_milestones(context, reference))}),
    Action("open-case", "Open a case by hand", "Open the case",
           (Field("date", "Referral received on", "date", hint="Day 0 is this date."),
            Field("time", "At", "time", hint="For example 10:30."),
            Field("referrer", "Referrer's email address", "email", required=False,
                  hint="They are told the decision. Optional.")), _open),
)}


async def action_page(request: Request) -> Response:
    """Show an action's form, or do the action and go back to the case."""
    actor = require_signed_in(request)
    action = ACTIONS.get(request.path_params["action"])
    reference = request.path_params.get("reference", "")
    if action is None or (action.slug == "open-case") == bool(reference):
        raise Refused(404, "Page not found", "There is no such page.")
    if actor.role not in MANAGERS:
        raise Refused(403, "Not allowed", "Sorry, only the partnership's business manager can"
                                          " do this. You can read the case.")
    cockpit = cockpit_of(request)
    filled, general = None, None
    if request.method == "POST":
        filled = await read_form(await checked_form(request), action.fields, cockpit.config)
        if not filled.errors:
            values = filled.values
            try:
                notice = await run_command(request, actor,
                                           lambda context: action.perform(context, reference,
                                                                          values))
            except NotAllowed as exc:
                raise Refused(403, "Not allowed", str(exc)) from None
            except CommandError as exc:
                general = str(exc)
            else:
                cockpit.on_change()
                if notice.startswith("opened:"):
                    reference = notice.removeprefix("opened:")
                    notice = f"Case {reference} is open; the partners are asked to decide."
                tell_next_page(request, notice)
                return RedirectResponse(f"/cases/{reference}", status_code=303)
    options = await run_command(request, actor, lambda context: action.choices(context,
                                                                               reference))
    fields = tuple(replace(question, options=options[question.name])
                   if question.name in options else question for question in action.fields)
    errors = dict(filled.errors) if filled else {}
    if general:
        errors = {fields[0].name: general} if fields else {"": general}
    return render(request, "action.html.j2", status=400 if errors else 200, actor=actor,
                  action=action, fields=fields, reference=reference, errors=errors,
                  raw=filled.raw if filled else {})
