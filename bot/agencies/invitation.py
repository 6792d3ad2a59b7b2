"""What goes with a request: the partnership's form and the meeting invitation."""

from __future__ import annotations

from pathlib import Path

from bot.agencies.meeting import meeting_request
from bot.config import Config
from bot.kernel.outbox import Attachment
from bot.papers.forms import agency_forms
from bot.settings import Agency
from bot.store.models import AgencyRequest, Case


def request_attachments(
    config: Config, case: Case, request: AgencyRequest, found: Agency
) -> list[Attachment]:
    """Return what goes with a request: the form, and the meeting invitation."""
    attachments = []
    settings = config.settings
    form_path = settings.agency_requests.form_path
    if form_path:
        base = config.source.resolve().parent if config.source else Path.cwd()
        form = base / form_path
        attachments.append(Attachment(form.name, form.read_bytes(), "application",
                                      _subtype(form.suffix)))
    attachments.extend(agency_forms(config, case, request, found))
    if config.preset.agency_requests.meeting_invite:
        attachments.append(meeting_request(config, case, found, request.asked_at))
    return attachments


def _subtype(suffix: str) -> str:
    return {
        ".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".pdf": "pdf",
        ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }.get(suffix.lower(), "octet-stream")
